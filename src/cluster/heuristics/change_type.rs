//! Same-script-type change: when every input has one script type, the only output of that
//! type is change (a wallet pays its change to its own kind of address). Source: Möser &
//! Narayanan, "Resurrecting Address Clustering in Bitcoin", FC 2022; BlockSci
//! `ChangeType::ScriptType`.

use super::{TxView, only};

/// The change output's position, if the rule names one.
pub fn change(tx: &TxView) -> Option<usize> {
    let t0 = tx.inputs.first()?.script;
    if !tx.inputs.iter().all(|i| i.script == t0) {
        return None;
    }
    only(tx, |o| o.script == t0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::bitcoin::script::ScriptType;

    #[test]
    fn the_one_output_of_the_inputs_type_is_change() {
        let mut tx = TxView::literal(
            &[(1, 50_000), (2, 20_000)],
            &[(7, 30_000, true, 1), (8, 39_000, true, 1)],
        );
        tx.outputs[0].script = ScriptType::P2pkh;
        assert_eq!(change(&tx), Some(1));
        // Both outputs of the inputs' type: none.
        tx.outputs[0].script = ScriptType::P2wpkh;
        assert_eq!(change(&tx), None);
        // Inputs of two types: the rule does not apply.
        tx.outputs[0].script = ScriptType::P2pkh;
        tx.inputs[1].script = ScriptType::P2tr;
        assert_eq!(change(&tx), None);
    }
}

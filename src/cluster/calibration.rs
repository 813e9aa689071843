//! Measured error rates of the clustering heuristics: each rule's merge precision, and
//! pairwise scores of multi-input, the default set and the oracle of perfect change
//! detection, measured with `chaintrace eval clusters` on one real-node world and two
//! simulated ones (`contrib/calibrate/run.sh` writes this file). `merges.parquet` records a
//! merge's rule with these figures, `cluster show` names a cluster's weakest link by them,
//! and the evidence report prints them for the heuristics a case used. A test re-measures
//! world A and checks them.

/// When the figures were measured.
pub const MEASURED_ON: &str = "2026-12-02";

/// The worlds measured, in the order of the figures below.
pub const WORLDS: [&str; 3] = [
    "regtest world A: real Bitcoin Core wallets (v30.99), 2,894 transactions, ground_truth/addresses.csv",
    "simulate --txs 50000 --seed 7 --preset default",
    "simulate --txs 50000 --seed 7 --preset adversarial",
];

/// A rule's merges on one world: how many joined two addresses of the truth, and the
/// share of those that joined one entity.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RuleRate {
    pub merges: u64,
    pub precision: f64,
}

/// Pairwise scores of a heuristic set on one world.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SetRate {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub homogeneity: f64,
    pub completeness: f64,
    /// `None` for a row without merges of its own (the oracle).
    pub false_merges_per_1000: Option<f64>,
}

/// Each rule's merge precision on the three [`WORLDS`] (measured with multi-input plus
/// the rule alone), then the consensus's merges by kind of decision (`change-vote/precise`:
/// precise rules agreed; `change-vote/votes`: the votes decided), measured in the default
/// set.
pub const RULES: [(&str, [RuleRate; 3]); 19] = [
    (
        "multi-input",
        [
            RuleRate {
                merges: 1183,
                precision: 1.0000,
            },
            RuleRate {
                merges: 60073,
                precision: 1.0000,
            },
            RuleRate {
                merges: 67647,
                precision: 1.0000,
            },
        ],
    ),
    (
        "change-one-time",
        [
            RuleRate {
                merges: 592,
                precision: 1.0000,
            },
            RuleRate {
                merges: 8871,
                precision: 1.0000,
            },
            RuleRate {
                merges: 8952,
                precision: 0.9958,
            },
        ],
    ),
    (
        "change-type",
        [
            RuleRate {
                merges: 34,
                precision: 0.1765,
            },
            RuleRate {
                merges: 13594,
                precision: 0.9807,
            },
            RuleRate {
                merges: 6541,
                precision: 0.9008,
            },
        ],
    ),
    (
        "change-optimal",
        [
            RuleRate {
                merges: 45,
                precision: 1.0000,
            },
            RuleRate {
                merges: 1452,
                precision: 0.9236,
            },
            RuleRate {
                merges: 1832,
                precision: 0.8695,
            },
        ],
    ),
    (
        "change-round",
        [
            RuleRate {
                merges: 558,
                precision: 0.9982,
            },
            RuleRate {
                merges: 15340,
                precision: 0.9998,
            },
            RuleRate {
                merges: 2561,
                precision: 0.9980,
            },
        ],
    ),
    (
        "change-fresh",
        [
            RuleRate {
                merges: 592,
                precision: 1.0000,
            },
            RuleRate {
                merges: 8871,
                precision: 1.0000,
            },
            RuleRate {
                merges: 8976,
                precision: 0.9932,
            },
        ],
    ),
    (
        "change-single-use",
        [
            RuleRate {
                merges: 962,
                precision: 1.0000,
            },
            RuleRate {
                merges: 11718,
                precision: 1.0000,
            },
            RuleRate {
                merges: 12110,
                precision: 0.9908,
            },
        ],
    ),
    (
        "change-decimals",
        [
            RuleRate {
                merges: 972,
                precision: 0.9969,
            },
            RuleRate {
                merges: 20507,
                precision: 0.9993,
            },
            RuleRate {
                merges: 3499,
                precision: 0.9903,
            },
        ],
    ),
    (
        "change-spent-alone",
        [
            RuleRate {
                merges: 1148,
                precision: 0.9260,
            },
            RuleRate {
                merges: 15798,
                precision: 0.8578,
            },
            RuleRate {
                merges: 7472,
                precision: 0.8144,
            },
        ],
    ),
    (
        "change-peel",
        [
            RuleRate {
                merges: 1114,
                precision: 0.9318,
            },
            RuleRate {
                merges: 15247,
                precision: 0.8654,
            },
            RuleRate {
                merges: 7004,
                precision: 0.8125,
            },
        ],
    ),
    (
        "change-first-spent",
        [
            RuleRate {
                merges: 1925,
                precision: 0.7345,
            },
            RuleRate {
                merges: 10539,
                precision: 0.5867,
            },
            RuleRate {
                merges: 7043,
                precision: 0.7528,
            },
        ],
    ),
    (
        "change-foreign",
        [
            RuleRate {
                merges: 1171,
                precision: 0.9155,
            },
            RuleRate {
                merges: 25142,
                precision: 0.8987,
            },
            RuleRate {
                merges: 23455,
                precision: 0.9064,
            },
        ],
    ),
    (
        "change-batch",
        [
            RuleRate {
                merges: 79,
                precision: 0.9367,
            },
            RuleRate {
                merges: 443,
                precision: 0.9052,
            },
            RuleRate {
                merges: 182,
                precision: 0.9670,
            },
        ],
    ),
    (
        "change-fingerprint",
        [
            RuleRate {
                merges: 28,
                precision: 0.7143,
            },
            RuleRate {
                merges: 20184,
                precision: 0.7043,
            },
            RuleRate {
                merges: 19565,
                precision: 0.5231,
            },
        ],
    ),
    (
        "change-sweep",
        [
            RuleRate {
                merges: 637,
                precision: 0.8697,
            },
            RuleRate {
                merges: 26384,
                precision: 0.8891,
            },
            RuleRate {
                merges: 16610,
                precision: 0.7801,
            },
        ],
    ),
    (
        "change-round-fiat",
        [
            RuleRate {
                merges: 0,
                precision: 1.0000,
            },
            RuleRate {
                merges: 0,
                precision: 1.0000,
            },
            RuleRate {
                merges: 0,
                precision: 1.0000,
            },
        ],
    ),
    (
        "change-vote",
        [
            RuleRate {
                merges: 1912,
                precision: 0.9864,
            },
            RuleRate {
                merges: 34670,
                precision: 0.9889,
            },
            RuleRate {
                merges: 21837,
                precision: 0.9804,
            },
        ],
    ),
    (
        "change-vote/precise",
        [
            RuleRate {
                merges: 1512,
                precision: 0.9987,
            },
            RuleRate {
                merges: 26522,
                precision: 0.9995,
            },
            RuleRate {
                merges: 14449,
                precision: 0.9905,
            },
        ],
    ),
    (
        "change-vote/votes",
        [
            RuleRate {
                merges: 400,
                precision: 0.9400,
            },
            RuleRate {
                merges: 8148,
                precision: 0.9543,
            },
            RuleRate {
                merges: 7388,
                precision: 0.9606,
            },
        ],
    ),
];

/// Pairwise scores of multi-input alone on the three [`WORLDS`].
pub const MULTI_INPUT: [SetRate; 3] = [
    SetRate {
        precision: 1.0000,
        recall: 0.0504,
        f1: 0.0959,
        homogeneity: 1.0000,
        completeness: 0.3743,
        false_merges_per_1000: Some(0.0000),
    },
    SetRate {
        precision: 1.0000,
        recall: 0.0187,
        f1: 0.0368,
        homogeneity: 1.0000,
        completeness: 0.5340,
        false_merges_per_1000: Some(0.0000),
    },
    SetRate {
        precision: 1.0000,
        recall: 0.0071,
        f1: 0.0141,
        homogeneity: 1.0000,
        completeness: 0.4964,
        false_merges_per_1000: Some(0.0000),
    },
];

/// Pairwise scores of the default set (multi-input + change-vote) on the three [`WORLDS`].
pub const DEFAULT_SET: [SetRate; 3] = [
    SetRate {
        precision: 0.9833,
        recall: 0.1193,
        f1: 0.2127,
        homogeneity: 0.9906,
        completeness: 0.4449,
        false_merges_per_1000: Some(8.4006),
    },
    SetRate {
        precision: 0.9911,
        recall: 0.0298,
        f1: 0.0578,
        homogeneity: 0.9978,
        completeness: 0.5781,
        false_merges_per_1000: Some(4.0636),
    },
    SetRate {
        precision: 0.9964,
        recall: 0.0086,
        f1: 0.0171,
        homogeneity: 0.9992,
        completeness: 0.5063,
        false_merges_per_1000: Some(4.7830),
    },
];

/// Pairwise scores of perfect change detection (the oracle: multi-input plus every true change output) on the three [`WORLDS`].
pub const ORACLE: [SetRate; 3] = [
    SetRate {
        precision: 1.0000,
        recall: 0.1808,
        f1: 0.3062,
        homogeneity: 1.0000,
        completeness: 0.4857,
        false_merges_per_1000: None,
    },
    SetRate {
        precision: 1.0000,
        recall: 0.0578,
        f1: 0.1094,
        homogeneity: 1.0000,
        completeness: 0.6167,
        false_merges_per_1000: None,
    },
    SetRate {
        precision: 1.0000,
        recall: 0.0118,
        f1: 0.0233,
        homogeneity: 1.0000,
        completeness: 0.5182,
        false_merges_per_1000: None,
    },
];

/// The measured rates of rule `name`, if it was measured.
pub fn rule(name: &str) -> Option<&'static [RuleRate; 3]> {
    RULES.iter().find(|(n, _)| *n == name).map(|(_, r)| r)
}

/// The lowest merge precision of rule `name` over the worlds it fired on: the
/// conservative confidence of one of its merges. `None` for a rule never measured or one
/// that fired on none of the worlds (the round-in-fiat rule: they have no prices).
pub fn confidence(name: &str) -> Option<f64> {
    let fired: Vec<f64> = rule(name)?
        .iter()
        .filter(|x| x.merges > 0)
        .map(|x| x.precision)
        .collect();
    (!fired.is_empty()).then(|| fired.into_iter().fold(1.0, f64::min))
}

//! Measured error rates of the clustering heuristics: each rule's merge precision, and
//! pairwise scores of multi-input, the default set and the oracle of perfect change
//! detection, measured with `chaintrace eval clusters` on one real-node world and two
//! simulated ones (`contrib/calibrate/run.sh` writes this file). `merges.parquet` records a
//! merge's rule with these figures, `cluster show` names a cluster's weakest link by them,
//! and the evidence report prints them for the heuristics a case used. A test re-measures
//! world A and checks them.

/// When the figures were measured.
pub const MEASURED_ON: &str = "2026-11-30";

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
    pub false_merges_per_1000: f64,
}

/// Each rule's merge precision on the three [`WORLDS`] (measured with multi-input plus
/// the rule alone).
pub const RULES: [(&str, [RuleRate; 3]); 14] = [
    (
        "multi-input",
        [
            RuleRate {
                merges: 1183,
                precision: 1.0000,
            },
            RuleRate {
                merges: 59982,
                precision: 1.0000,
            },
            RuleRate {
                merges: 69846,
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
                merges: 8947,
                precision: 1.0000,
            },
            RuleRate {
                merges: 8930,
                precision: 0.9961,
            },
        ],
    ),
    (
        "change-type",
        [
            RuleRate {
                merges: 35,
                precision: 0.1714,
            },
            RuleRate {
                merges: 13541,
                precision: 0.9812,
            },
            RuleRate {
                merges: 6544,
                precision: 0.8953,
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
                merges: 1409,
                precision: 0.9276,
            },
            RuleRate {
                merges: 1785,
                precision: 0.8611,
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
                merges: 15391,
                precision: 0.9999,
            },
            RuleRate {
                merges: 2570,
                precision: 0.9984,
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
                merges: 8947,
                precision: 1.0000,
            },
            RuleRate {
                merges: 8949,
                precision: 0.9940,
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
                merges: 11689,
                precision: 1.0000,
            },
            RuleRate {
                merges: 12013,
                precision: 0.9913,
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
                merges: 20767,
                precision: 0.9990,
            },
            RuleRate {
                merges: 3584,
                precision: 0.9914,
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
                merges: 15555,
                precision: 0.8530,
            },
            RuleRate {
                merges: 7212,
                precision: 0.8130,
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
                merges: 15032,
                precision: 0.8591,
            },
            RuleRate {
                merges: 6750,
                precision: 0.8092,
            },
        ],
    ),
    (
        "change-first-spent",
        [
            RuleRate {
                merges: 1996,
                precision: 0.7104,
            },
            RuleRate {
                merges: 10402,
                precision: 0.6232,
            },
            RuleRate {
                merges: 7381,
                precision: 0.7297,
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
                merges: 25288,
                precision: 0.8870,
            },
            RuleRate {
                merges: 23713,
                precision: 0.9076,
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
                merges: 389,
                precision: 0.8689,
            },
            RuleRate {
                merges: 201,
                precision: 0.9851,
            },
        ],
    ),
    (
        "change-vote",
        [
            RuleRate {
                merges: 1925,
                precision: 0.9865,
            },
            RuleRate {
                merges: 34371,
                precision: 0.9869,
            },
            RuleRate {
                merges: 21722,
                precision: 0.9798,
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
        false_merges_per_1000: 0.0000,
    },
    SetRate {
        precision: 1.0000,
        recall: 0.0171,
        f1: 0.0336,
        homogeneity: 1.0000,
        completeness: 0.5316,
        false_merges_per_1000: 0.0000,
    },
    SetRate {
        precision: 1.0000,
        recall: 0.0081,
        f1: 0.0160,
        homogeneity: 1.0000,
        completeness: 0.4973,
        false_merges_per_1000: 0.0000,
    },
];

/// Pairwise scores of the default set (multi-input + change-vote) on the three [`WORLDS`].
pub const DEFAULT_SET: [SetRate; 3] = [
    SetRate {
        precision: 0.9833,
        recall: 0.1196,
        f1: 0.2133,
        homogeneity: 0.9906,
        completeness: 0.4456,
        false_merges_per_1000: 8.3655,
    },
    SetRate {
        precision: 0.9862,
        recall: 0.0267,
        f1: 0.0521,
        homogeneity: 0.9974,
        completeness: 0.5719,
        false_merges_per_1000: 4.7693,
    },
    SetRate {
        precision: 0.9917,
        recall: 0.0097,
        f1: 0.0192,
        homogeneity: 0.9991,
        completeness: 0.5069,
        false_merges_per_1000: 4.7833,
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
        false_merges_per_1000: 0.0000,
    },
    SetRate {
        precision: 1.0000,
        recall: 0.0529,
        f1: 0.1006,
        homogeneity: 1.0000,
        completeness: 0.6082,
        false_merges_per_1000: 0.0000,
    },
    SetRate {
        precision: 1.0000,
        recall: 0.0128,
        f1: 0.0252,
        homogeneity: 1.0000,
        completeness: 0.5187,
        false_merges_per_1000: 0.0000,
    },
];

/// The measured rates of rule `name`, if it was measured.
pub fn rule(name: &str) -> Option<&'static [RuleRate; 3]> {
    RULES.iter().find(|(n, _)| *n == name).map(|(_, r)| r)
}

/// The lowest merge precision of rule `name` over the worlds it fired on: the
/// conservative confidence of one of its merges.
pub fn confidence(name: &str) -> Option<f64> {
    rule(name).map(|r| {
        r.iter()
            .filter(|x| x.merges > 0)
            .map(|x| x.precision)
            .fold(1.0, f64::min)
    })
}

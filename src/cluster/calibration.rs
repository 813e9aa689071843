//! Measured error rates of the clustering heuristics (issue: "courts need the error rate
//! of the method"): each rule's merge precision, and the default set's pairwise scores,
//! measured with `chaintrace eval clusters` on one real-node world and two simulated ones
//! on the date below. `merges.parquet` records a merge's rule with these figures,
//! `cluster show` names a cluster's weakest link by them, and the evidence report prints
//! them for the heuristics a case used. docs/CLUSTERING.md has the full tables; a test
//! re-measures world A and checks these figures.

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
                merges: 60220,
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
                merges: 8909,
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
                merges: 28866,
                precision: 0.9897,
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
                merges: 1496,
                precision: 0.9365,
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
                merges: 15100,
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
                merges: 8909,
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
                merges: 11810,
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
                merges: 20332,
                precision: 0.9989,
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
                merges: 15732,
                precision: 0.8514,
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
                merges: 15145,
                precision: 0.8572,
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
                merges: 10548,
                precision: 0.6128,
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
                merges: 25192,
                precision: 0.8974,
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
                merges: 420,
                precision: 0.8857,
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
                merges: 35763,
                precision: 0.9906,
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
        recall: 0.0199,
        f1: 0.0390,
        homogeneity: 1.0000,
        completeness: 0.5339,
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
        precision: 0.9746,
        recall: 0.0305,
        f1: 0.0591,
        homogeneity: 0.9977,
        completeness: 0.5780,
        false_merges_per_1000: 3.5110,
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
        recall: 0.0596,
        f1: 0.1126,
        homogeneity: 1.0000,
        completeness: 0.6150,
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

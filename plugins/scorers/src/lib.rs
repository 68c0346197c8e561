//! valex-scorers: the built-in neuron scorers (statistics in, neuron sets out).
//!
//! It owns `scorer/lape` ([`lape`], torch-exact, with [`torch_compat`]) and the contrast
//! scorers, which compare each label with the pooled other labels: `scorer/act-prob-diff`
//! ([`act_prob_diff`]), `scorer/mean-diff` ([`mean_diff`]), `scorer/welch-t` ([`welch_t`]) and
//! `scorer/auroc` ([`auroc`]). Their shared parts: [`contrast`] (labels, levels, pooling),
//! [`two_sample`] (Welch, effect sizes, binormal AUROC), [`multitest`] (p-value corrections)
//! and [`selection`] (the rules that turn scores into sets). Scorers depend on `valex-core`
//! and statrs only; they never see a model or a file.

pub mod act_prob_diff;
pub mod auroc;
pub mod contrast;
pub mod lape;
pub mod mean_diff;
pub mod multitest;
pub mod plugin;
pub mod selection;
pub mod torch_compat;
pub mod two_sample;
pub mod welch_t;

pub use act_prob_diff::{
    ActProbDiffConfig, ActProbDiffScorer, act_prob_diff_factory, act_prob_diff_scores,
};
pub use auroc::{AurocConfig, AurocMethod, AurocScorer, auroc_factory, auroc_ranks, auroc_tables};
pub use contrast::Level;
pub use lape::{
    LapeConfig, LapeScorer, LapeSelection, NormalizeBy, activation_probs, entropies, lape_factory,
    lape_select,
};
pub use mean_diff::{
    MeanDiffConfig, MeanDiffScorer, Statistic, mean_diff_factory, mean_diff_scores,
};
pub use multitest::{Correction, CorrectionError, adjust_p};
pub use plugin::ScorersPlugin;
pub use selection::{RuleName, Selection, SelectionConfig, Sign, overlaps};
pub use welch_t::{
    WelchConfig, WelchScorer, WelchTable, welch_factory, welch_tables, welch_tables_between,
    welch_tables_up_to,
};

//! Command-line arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// valex: neuron-level experiments on language models, from one manifest.
#[derive(Debug, Parser)]
#[command(name = "valex", version, about, long_about = None)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub log: LogArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub(crate) struct LogArgs {
    /// More log output (-v debug, -vv trace). VALEX_LOG (EnvFilter syntax) overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Less log output (-q warnings only, -qq errors only).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub quiet: u8,
    /// Log format on stderr: text or json.
    #[arg(long, default_value = "text", value_parser = ["text", "json"], global = true)]
    pub log_format: String,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run an experiment manifest and write a run directory.
    Run(RunArgs),
    /// Load and validate a manifest (all layers, all components) without running it.
    Validate(ValidateArgs),
    /// List every registered component with its kind and version.
    Plugins(PluginsArgs),
    /// Score neurons from a statistics file or released counts, without the model.
    Score(ScoreArgs),
}

#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// The manifest (TOML).
    pub manifest: PathBuf,
    /// Run directory (default: runs/<name>-<UTC timestamp>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Replace an existing run directory.
    #[arg(long)]
    pub force: bool,
    /// Override a manifest key: --set key=value (dotted key; TOML value or plain string).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
}

#[derive(Debug, Args)]
pub(crate) struct ValidateArgs {
    /// The manifest (TOML).
    pub manifest: PathBuf,
    /// Override a manifest key: --set key=value.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
    /// Print the resolved manifest (all layers applied).
    #[arg(long)]
    pub print: bool,
}

#[derive(Debug, Args)]
pub(crate) struct PluginsArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct ScoreArgs {
    /// A folder in the released-counts layout (over_zero.safetensors + counts.json).
    #[arg(long, conflicts_with = "stats", required_unless_present = "stats")]
    pub counts: Option<PathBuf>,
    /// A valex statistics file (statistics.safetensors, its .json sidecar, or the stem).
    #[arg(long)]
    pub stats: Option<PathBuf>,
    /// Comma-separated labels compared by the scorer (default: every label in the file).
    #[arg(long, value_delimiter = ',')]
    pub labels: Vec<String>,
    /// The scorer (`lape` or `scorer/lape`).
    #[arg(long, default_value = "scorer/lape")]
    pub scorer: String,
    /// Scorer params: --set scorer.KEY=VALUE.
    #[arg(long = "set", value_name = "scorer.KEY=VALUE")]
    pub sets: Vec<String>,
    /// Output neuron-set file (JSON).
    #[arg(long)]
    pub out: PathBuf,
    /// Replace an existing output file.
    #[arg(long)]
    pub force: bool,
}

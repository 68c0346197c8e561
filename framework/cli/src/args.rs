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
    /// Inspect datasets: counts, lengths, duplicates, translation coverage.
    Data(DataArgs),
    /// Check a run's inputs against its hashes, rerun it and compare every output.
    Verify(VerifyArgs),
    /// Dump logits and tap activations of a model for a few texts (safetensors).
    Inspect(InspectArgs),
    /// Run the backend self-checks (taps, padding, batch invariance) of a manifest's model.
    Check(CheckArgs),
    /// Time the candle backend on a random-weight model (plain, layers, stats, ablate).
    Bench(BenchArgs),
    /// Run only the recording stage of a manifest (optionally one shard) into a statistics file.
    Record(RecordArgs),
    /// Merge shard statistics from `valex record --shard` into one statistics file.
    Merge(MergeArgs),
}

#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// The manifest (TOML).
    #[arg(required_unless_present = "resume")]
    pub manifest: Option<PathBuf>,
    /// Continue an interrupted, killed or failed run: its run directory (or its hidden
    /// `.NAME.partial` staging folder). The manifest, inputs and settings are the run's own.
    #[arg(
        long,
        value_name = "RUN_DIR",
        conflicts_with_all = ["manifest", "out", "sets", "plugins", "statistics"]
    )]
    pub resume: Option<PathBuf>,
    /// Run directory (default: runs/<name>-<UTC timestamp>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Replace an existing run directory.
    #[arg(long)]
    pub force: bool,
    /// Override a manifest key: --set key=value (dotted key; TOML value or plain string).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
    /// Load a run-time plugin library (repeatable); its components join the built-in ones.
    #[arg(long = "plugin", value_name = "PATH")]
    pub plugins: Vec<PathBuf>,
    /// Use these statistics (e.g. from `valex merge`) instead of recording; they must come
    /// from the same model, data and [record] settings.
    #[arg(long = "stats", value_name = "STATS")]
    pub statistics: Option<PathBuf>,
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
    /// Load a run-time plugin library (repeatable); its components join the built-in ones.
    #[arg(long = "plugin", value_name = "PATH")]
    pub plugins: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct PluginsArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Load a run-time plugin library (repeatable); its components join the built-in ones.
    #[arg(long = "plugin", value_name = "PATH")]
    pub plugins: Vec<PathBuf>,
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
    /// Run the scorer once per group of labels and concatenate the sets, as `[score] group_by`:
    /// `value` groups the labels sharing the part before `/` (`富强/support`, `富强/conflict`).
    #[arg(long, value_name = "value")]
    pub group_by: Option<String>,
    /// Scorer params: --set scorer.KEY=VALUE; selection rules: --set selection.KEY=VALUE
    /// (e.g. selection.rule=top-k, selection.k=100, selection.sign=both).
    #[arg(long = "set", value_name = "scorer.KEY=VALUE")]
    pub sets: Vec<String>,
    /// Output neuron-set file (JSON).
    #[arg(long)]
    pub out: PathBuf,
    /// Report selection stability: rerun the scorer on the bootstrap replicates stored in the
    /// statistics file (record.bootstrap) and give each label's Jaccard index to its set.
    #[arg(long)]
    pub stability: bool,
    /// Use at most N bootstrap replicates for --stability (implies --stability).
    #[arg(long, value_name = "N")]
    pub replicates: Option<usize>,
    /// Also write the sets in LAPE's mask layout (safetensors, `List[K][L]` int64).
    #[arg(long, value_name = "PATH")]
    pub export_lape: Option<PathBuf>,
    /// Replace an existing output file.
    #[arg(long)]
    pub force: bool,
    /// Load a run-time plugin library (repeatable); its components join the built-in ones.
    #[arg(long = "plugin", value_name = "PATH")]
    pub plugins: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    /// The run directory (holds run.json and manifest.resolved.toml).
    pub run_dir: PathBuf,
    /// Folder that relative paths in the manifest resolve against (default: the one recorded
    /// in run.json; pass it when the data lives elsewhere on this machine).
    #[arg(long)]
    pub base: Option<PathBuf>,
    /// Relative tolerance for numbers in JSON outputs (0 = byte-identical, for CPU f32 runs).
    #[arg(long, default_value_t = 0.0)]
    pub tolerance: f64,
}

#[derive(Debug, Args)]
pub(crate) struct DataArgs {
    #[command(subcommand)]
    pub command: DataCommand,
}

#[derive(Debug, Subcommand)]
pub(crate) enum DataCommand {
    /// Counts per value, language and kind; lengths; exact and near duplicates; translations.
    Stats(DataStatsArgs),
}

#[derive(Debug, Args)]
pub(crate) struct DataStatsArgs {
    /// A manifest (its [dataset] is read) or ID:PATH, e.g. dataset/jsonl:items.jsonl or
    /// dataset/c-voice:../shared/datasets/c-voice.
    pub spec: String,
    /// Override: --set dataset.params.KEY=VALUE (with a manifest, any manifest key).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
    /// Near-duplicate threshold: Jaccard similarity of word-sized shingles, in (0, 1].
    #[arg(long, default_value_t = valex_datasets::similarity::DEFAULT_NEAR_THRESHOLD)]
    pub near: f64,
    /// List at most this many entries per section (0 = all).
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
    /// Print JSON instead of tables.
    #[arg(long)]
    pub json: bool,
    /// Exit with code 1 when duplicates, identical options, translation problems or skipped
    /// rows are found.
    #[arg(long)]
    pub check: bool,
}

#[derive(Debug, Args)]
pub(crate) struct RecordArgs {
    /// The manifest (TOML); its [record] section is run.
    pub manifest: PathBuf,
    /// Record only shard i of n (1-based): items at positions p with p % n == i - 1.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<String>,
    /// Output statistics (a stem, or a .safetensors/.json path).
    #[arg(long)]
    pub out: PathBuf,
    /// Replace existing output files.
    #[arg(long)]
    pub force: bool,
    /// Override a manifest key: --set key=value.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
    /// Load a run-time plugin library (repeatable).
    #[arg(long = "plugin", value_name = "PATH")]
    pub plugins: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct MergeArgs {
    /// Shard statistics files (all shards 1..n of one recording).
    #[arg(required = true)]
    pub parts: Vec<PathBuf>,
    /// Output statistics (a stem, or a .safetensors/.json path).
    #[arg(long)]
    pub out: PathBuf,
    /// Replace existing output files.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub(crate) struct InspectArgs {
    /// HF model directory (config.json, safetensors weights, tokenizer.json).
    #[arg(long)]
    pub model: PathBuf,
    /// A text (repeatable); the texts run as one right-padded batch, row i = text i.
    #[arg(long = "text", value_name = "TEXT", required = true)]
    pub texts: Vec<String>,
    /// Comma-separated taps to dump (default: every tap the model offers).
    #[arg(long, value_delimiter = ',', value_name = "NAME,...")]
    pub taps: Vec<String>,
    /// Output safetensors file.
    #[arg(long)]
    pub out: PathBuf,
    /// Replace an existing output file.
    #[arg(long)]
    pub force: bool,
    /// Compute dtype: f32, bf16 or f16.
    #[arg(long, default_value = "f32")]
    pub dtype: String,
    /// Device: cpu, cuda or cuda:N (cuda needs a build with the `cuda` feature).
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Wrap each text in the model's chat template (as the user turn).
    #[arg(long)]
    pub chat_template: bool,
}

#[derive(Debug, Args)]
pub(crate) struct CheckArgs {
    /// The manifest (TOML).
    pub manifest: PathBuf,
    /// Override a manifest key: --set key=value.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
    /// Load a run-time plugin library (repeatable).
    #[arg(long = "plugin", value_name = "PATH")]
    pub plugins: Vec<PathBuf>,
    /// Texts of the dataset used as the sample.
    #[arg(long, default_value_t = 8)]
    pub sample: usize,
    /// Largest relative error accepted (default: record.self_check_tolerance, else 1e-3).
    #[arg(long)]
    pub tolerance: Option<f64>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct BenchArgs {
    /// Model shape: tiny, mid, qwen2_0_5b, qwen2_7b or llama3_8b (random weights).
    #[arg(long, default_value = "mid")]
    pub shape: String,
    /// Rows per batch (the first quarter of the rows is half padding).
    #[arg(long, default_value_t = 4)]
    pub batch: usize,
    /// Padded length of a batch.
    #[arg(long, default_value_t = 128)]
    pub seq: usize,
    /// Timed iterations per mode, after one warm-up.
    #[arg(long, default_value_t = 3)]
    pub iters: usize,
    /// Compute dtype: f32, bf16 or f16.
    #[arg(long, default_value = "f32")]
    pub dtype: String,
    /// Device: cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Comma-separated modes: plain, layers, stats, ablate.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "plain,layers,stats,ablate"
    )]
    pub modes: Vec<String>,
    /// After timing each mode, run it again as often with every section of the forward timed
    /// on its own (the device is waited for around each), and print where the time goes.
    #[arg(long)]
    pub profile: bool,
    /// Also write the timings as JSON.
    #[arg(long, value_name = "PATH")]
    pub json: Option<std::path::PathBuf>,
}

//! One module per subcommand.

mod bench;
mod check;
mod data;
mod inspect;
mod plugins;
mod run;
mod score;
mod shard;
mod validate;
mod verify;

use crate::args::Command;
use crate::exit::CliError;

pub(crate) fn dispatch(cmd: Command) -> Result<(), CliError> {
    match cmd {
        Command::Run(a) => run::run(&a),
        Command::Validate(a) => validate::validate(&a),
        Command::Plugins(a) => plugins::plugins(&a),
        Command::Score(a) => score::score(&a),
        Command::Data(a) => data::data(&a),
        Command::Verify(a) => verify::verify(&a),
        Command::Inspect(a) => inspect::inspect(&a),
        Command::Check(a) => check::check(&a),
        Command::Bench(a) => bench::bench(&a),
        Command::Record(a) => shard::record(&a),
        Command::Merge(a) => shard::merge(&a),
    }
}

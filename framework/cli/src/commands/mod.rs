//! One module per subcommand.

mod plugins;
mod run;
mod score;
mod validate;

use crate::args::Command;
use crate::exit::CliError;

pub(crate) fn dispatch(cmd: Command) -> Result<(), CliError> {
    match cmd {
        Command::Run(a) => run::run(&a),
        Command::Validate(a) => validate::validate(&a),
        Command::Plugins(a) => plugins::plugins(&a),
        Command::Score(a) => score::score(&a),
    }
}

//! `valex plugins`: every registered component.

use crate::args::PluginsArgs;
use crate::exit::CliError;
use crate::registry::builtin_registry;
use crate::write_stdout;

pub(crate) fn plugins(args: &PluginsArgs) -> Result<(), CliError> {
    let comps = builtin_registry().components();
    if args.json {
        let s = serde_json::to_string_pretty(&comps).expect("component infos serialise");
        write_stdout(&s);
        return Ok(());
    }
    let w = comps.iter().map(|c| c.id.len()).max().unwrap_or(2).max(2);
    write_stdout(&format!(
        "{:<w$}  {:<12}  {:<8}  {:<20}  summary",
        "id", "kind", "version", "source"
    ));
    for c in comps {
        write_stdout(&format!(
            "{:<w$}  {:<12}  {:<8}  {:<20}  {}",
            c.id, c.kind, c.version, c.source, c.summary
        ));
    }
    Ok(())
}

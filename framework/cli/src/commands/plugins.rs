//! `valex plugins`: every registered component; for external ones also the library path,
//! plugin version and ABI version.

use crate::args::PluginsArgs;
use crate::exit::CliError;
use crate::external::{library_records, load_components};
use crate::write_stdout;

pub(crate) fn plugins(args: &PluginsArgs) -> Result<(), CliError> {
    let c = load_components(None, &args.plugins)?;
    let comps = c.registry.components();
    let libraries = library_records(&c.host);
    if args.json {
        // One entry per component; external ones also carry their library's record.
        let doc: Vec<serde_json::Value> = comps
            .iter()
            .map(|c| {
                let mut v = serde_json::to_value(c).expect("component infos serialise");
                if let Some(l) = libraries.iter().find(|l| l["path"] == c.source.as_str()) {
                    v["library"] = l.clone();
                }
                v
            })
            .collect();
        let s = serde_json::to_string_pretty(&doc).expect("component infos serialise");
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
    if !libraries.is_empty() {
        write_stdout("");
        write_stdout("plugin libraries:");
        for l in &libraries {
            write_stdout(&format!(
                "{}  {} {}  ABI v{}  sdk {}  sha256 {}",
                l["path"].as_str().unwrap_or_default(),
                l["name"].as_str().unwrap_or_default(),
                l["version"].as_str().unwrap_or_default(),
                l["abi_version"],
                l["sdk_version"].as_str().unwrap_or_default(),
                l["sha256"].as_str().unwrap_or_default(),
            ));
        }
    }
    Ok(())
}

//! Loading: the example loads with its facts; bad files, duplicates.

use std::path::Path;

use valex_core::{AnyFactory, Kind, Plugin, RegistryBuilder, RegistryError};
use valex_plugin_host::{ABI_VERSION, PluginHost, PluginLoadError};

use crate::support::{example_copy, example_lib};

#[test]
fn loads_the_example_with_its_facts_and_components() {
    let path = example_lib();
    let mut host = PluginHost::new();
    let lib = host.load(&path).expect("the example loads");
    let info = lib.info();
    assert_eq!(info.name, "valex-plugin-example");
    assert_eq!(info.version, valex_core::VALEX_VERSION);
    assert_eq!(info.abi_version, ABI_VERSION);
    assert_eq!(info.sdk_version, valex_core::VALEX_VERSION);
    assert!(
        info.rustc_version.starts_with("rustc "),
        "{}",
        info.rustc_version
    );
    use sha2::Digest;
    let expected = hex::encode(sha2::Sha256::digest(std::fs::read(&path).unwrap()));
    assert_eq!(info.sha256, expected);
    let ids: Vec<&str> = lib.components().iter().map(|c| c.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "scorer/max-smd",
            "intervention/example-scale",
            "reporter/example-summary",
            "scorer/panic-probe"
        ]
    );
    // The same file again loads once.
    host.load(&path).expect("loads again");
    assert_eq!(host.libraries().len(), 1);

    let mut b = RegistryBuilder::new();
    host.register(&mut b).expect("registers");
    let r = b.build();
    let (c, _) = r.lookup(Kind::Scorer, "max-smd").expect("registered");
    assert_eq!(c.source, path.display().to_string());
    assert_eq!(c.version, "0.1.0");
    assert!(r.lookup(Kind::Intervention, "example-scale").is_ok());
    assert!(r.lookup(Kind::Reporter, "example-summary").is_ok());
}

#[test]
fn missing_and_non_library_files_fail_with_their_path() {
    let mut host = PluginHost::new();
    let e = host.load(Path::new("no/such/libx.so")).unwrap_err();
    assert!(matches!(e, PluginLoadError::Unreadable { .. }), "{e:?}");
    assert_eq!(e.to_string(), "cannot read plugin library no/such/libx.so");

    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("libtext.so");
    std::fs::write(&text, "not a library").unwrap();
    let e = host.load(&text).unwrap_err();
    assert!(matches!(e, PluginLoadError::Open { .. }), "{e:?}");
    assert_eq!(e.path(), text);
    assert!(
        e.to_string().starts_with("cannot load plugin library "),
        "{e}"
    );
}

struct Builtin;
impl Plugin for Builtin {
    fn name(&self) -> &'static str {
        "valex-scorers"
    }
    fn register(&self, r: &mut RegistryBuilder) -> Result<(), RegistryError> {
        fn f(
            _: &serde_json::Value,
            _: &valex_core::FactoryContext,
        ) -> Result<Box<dyn valex_core::Scorer>, valex_core::ConfigError> {
            Err(valex_core::ConfigError::new(None, "unused"))
        }
        r.register("scorer/max-smd", "1", "", AnyFactory::Scorer(f))?;
        Ok(())
    }
}

#[test]
fn duplicate_ids_name_both_sources() {
    // Against a built-in component of the same id.
    let mut host = PluginHost::new();
    host.load(&example_lib()).unwrap();
    let mut b = RegistryBuilder::new();
    b.add_plugin(&Builtin).unwrap();
    let e = host.register(&mut b).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "plugin {}: component scorer/max-smd is already registered by valex-scorers",
            example_lib().display()
        )
    );

    // Against another library with the same components.
    let dir = tempfile::tempdir().unwrap();
    let copy = example_copy(dir.path(), "libcopy.so");
    let mut host = PluginHost::new();
    host.load(&example_lib()).unwrap();
    host.load(&copy).unwrap();
    let e = host.register(&mut RegistryBuilder::new()).unwrap_err();
    assert!(matches!(e, PluginLoadError::Duplicate { .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        format!(
            "plugin {}: component scorer/max-smd is already registered by {}",
            copy.display(),
            example_lib().display()
        )
    );
}

//! [`export_plugin!`](crate::export_plugin): declares a plugin's components and generates the
//! two exported symbols of the ABI (`valex_plugin_abi_version`, `valex_plugin_entry`).

/// Declares the plugin of this library and exports it.
///
/// ```ignore
/// valex_plugin_sdk::export_plugin! {
///     name: "my-plugin",                      // a string literal
///     version: env!("CARGO_PKG_VERSION"),     // a literal or env!(..)
///     components: [
///         valex_plugin_sdk::Component::scorer("scorer/my-score", "0.1.0", "one line", my_factory),
///     ],
/// }
/// ```
///
/// Use it once per library, in a crate with `crate-type = ["cdylib"]` (add `"rlib"` to test
/// the components in-process). Both arms starting with `@` are for valex's own ABI tests.
#[macro_export]
macro_rules! export_plugin {
    (name: $name:expr, version: $version:expr, components: [$($c:expr),* $(,)?] $(,)?) => {
        $crate::export_plugin!(@abi $crate::ABI_VERSION, name: $name, version: $version, components: [$($c),*]);
    };
    (@abi $abi:expr, name: $name:expr, version: $version:expr, components: [$($c:expr),* $(,)?]) => {
        $crate::export_plugin!(@version_symbol $abi);
        #[doc(hidden)]
        static __VALEX_PLUGIN_SPEC: $crate::PluginSpec = $crate::PluginSpec {
            name: $name,
            version: $version,
            components: &[$($c),*],
        };
        #[doc(hidden)]
        static __VALEX_PLUGIN_TABLE: $crate::rt::Table = $crate::rt::Table::new(
            $abi,
            $crate::rt::cstr(concat!($name, "\0")),
            $crate::rt::cstr(concat!($version, "\0")),
        );
        /// The plugin table (ABI symbol `valex_plugin_entry`).
        #[allow(unsafe_code, reason = "the ABI's exported symbol must not be mangled")]
        #[unsafe(no_mangle)]
        pub extern "C" fn valex_plugin_entry() -> *const $crate::rt::VxPluginV1 {
            $crate::rt::entry(&__VALEX_PLUGIN_SPEC, &__VALEX_PLUGIN_TABLE)
        }
    };
    (@version_symbol $abi:expr) => {
        /// The ABI version of this library (ABI symbol `valex_plugin_abi_version`).
        #[allow(unsafe_code, reason = "the ABI's exported symbol must not be mangled")]
        #[unsafe(no_mangle)]
        pub extern "C" fn valex_plugin_abi_version() -> u32 {
            $abi
        }
    };
}

//! valex-reporters: built-in reporters. Each turns the run's results document into files;
//! the runner writes them atomically into the run directory. Reporters depend on valex-core
//! only (plotters draws the HTML figures); they never read files or the runner's types.
//!
//! - `reporter/json`: results.json, the full document ([`json`]).
//! - `reporter/csv`: tidy long-format tables for pandas/R ([`csv`]).
//! - `reporter/markdown`: report.md ([`markdown`]).
//! - `reporter/html`: a self-contained report.html with SVG figures ([`html`]).
//!
//! Columns, files and params: docs/reporters.md.

pub mod csv;
pub mod figures;
pub mod format;
pub mod html;
pub mod json;
pub mod markdown;
pub mod params;
pub mod plugin;
pub mod results;

pub use plugin::ReportersPlugin;

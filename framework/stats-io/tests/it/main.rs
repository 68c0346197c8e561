//! Integration tests of valex-stats-io with the scorers that consume its files.
#![expect(
    clippy::print_stderr,
    reason = "tests report skipped data and the number of reproduced masks on stderr"
)]

mod published_masks;

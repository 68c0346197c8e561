//! valex end-to-end tests (the tests live in it/).

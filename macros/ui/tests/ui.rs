//! Misuse of the derives and of `#[controller]` is a compile error on the offending token, with a
//! fix hint. One case per file in `tests/ui/`; refresh the expected output with
//! `TRYBUILD=overwrite cargo test -p kubeforge-macros-ui --test ui` and review the diff.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
    // Shapes once refused that compile and give the schema they say (each `main` asserts it).
    t.pass("tests/ui/pass/*.rs");
}

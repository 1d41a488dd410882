//! What the crate's tests (tests/) share: counting Wycheproof verdicts
//! against the filter's answers. The tests run published vectors through
//! the filter's signature verification, natively and in V8 (see
//! Cargo.toml).

use wycheproof::TestResult;

/// Vectors checked, by verdict, and key groups read.
#[derive(Default, Debug)]
pub struct Counts {
    pub valid: usize,
    pub invalid: usize,
    pub groups: usize,
}

impl Counts {
    /// Fails the test unless `ok` (the filter accepted) agrees with the
    /// vector's verdict, and counts it.
    pub fn check(&mut self, what: &str, id: usize, comment: &str, result: TestResult, ok: bool) {
        match result {
            TestResult::Valid => {
                assert!(ok, "{what} tc {id} ({comment}) must pass");
                self.valid += 1;
            }
            TestResult::Invalid => {
                assert!(!ok, "{what} tc {id} ({comment}) must fail");
                self.invalid += 1;
            }
            // "Acceptable": either answer is allowed by the vectors.
            TestResult::Acceptable => {}
        }
    }
}

//! `CYCLONE_REQUIRE_BACKENDS`: a per-backend test whose backend is not
//! available skips with a note, unless the variable names that backend;
//! then the run fails. `check_required` is the decision, tested here on
//! made-up machines; the last test holds this machine to the variable.

mod common;

use common::{REQUIRE_ENV, check_required};
use cyclone::Backend;

const WITHOUT_URING: &[Backend] = &[Backend::Epoll, Backend::Poll, Backend::Select];
const ALL_FOUR: &[Backend] = &[
    Backend::Epoll,
    Backend::Uring,
    Backend::Poll,
    Backend::Select,
];

#[test]
fn a_required_backend_that_is_not_available_is_an_error_naming_it() {
    let err = check_required(WITHOUT_URING, Some("epoll,poll,select,uring")).unwrap_err();
    assert!(err.contains("the uring backend is required"), "{err}");
    assert!(err.contains("not available"), "{err}");
}

#[test]
fn required_backends_that_are_all_available_pass() {
    assert_eq!(
        check_required(ALL_FOUR, Some("epoll,poll,select,uring")),
        Ok(())
    );
    assert_eq!(check_required(WITHOUT_URING, Some("epoll, select")), Ok(()));
}

#[test]
fn without_the_variable_nothing_is_required() {
    assert_eq!(check_required(&[], None), Ok(()));
}

#[test]
fn an_unknown_backend_name_in_the_variable_is_an_error() {
    let err = check_required(ALL_FOUR, Some("epoll,kqueue")).unwrap_err();
    assert!(err.contains("kqueue"), "{err}");
}

#[test]
fn this_machine_has_every_backend_the_run_requires() {
    let required = std::env::var(REQUIRE_ENV).ok();
    if let Err(why) = check_required(Backend::available(), required.as_deref()) {
        panic!("{why}");
    }
}

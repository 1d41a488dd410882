//! The IdP misbehaving: timeouts, resets, error statuses, garbage.

use crate::common::idp::{self, serve_keys};
use crate::common::tokens::{claims, rs256};
use crate::common::*;

fn first_request(h: &wasm_test_harness::Harness) -> wasm_test_harness::Request {
    bearer(h, &rs256(&claims(h)))
}

#[test]
fn discovery_timeout_is_503() {
    let h = harness();
    let req = first_request(&h);
    req.expect_http_call(CLUSTER).time_out();
    assert_idp_failure(&req, 503);
}

#[test]
fn discovery_503_is_503() {
    let h = harness();
    let req = first_request(&h);
    req.expect_http_call(CLUSTER).respond(
        503,
        &[("content-type", "text/plain")],
        "no healthy upstream",
    );
    assert_idp_failure(&req, 503);
}

#[test]
fn discovery_reset_without_answer_is_503() {
    let h = harness();
    let req = first_request(&h);
    req.expect_http_call(CLUSTER).fail();
    assert_idp_failure(&req, 503);
}

#[test]
fn discovery_500_is_502() {
    let h = harness();
    let req = first_request(&h);
    req.expect_http_call(CLUSTER).respond(500, &[], "oops");
    assert_idp_failure(&req, 502);
}

#[test]
fn discovery_garbage_is_502() {
    let h = harness();
    let req = first_request(&h);
    req.expect_http_call(CLUSTER).respond(
        200,
        &[("content-type", "application/json")],
        "{not json",
    );
    assert_idp_failure(&req, 502);
}

#[test]
fn jwks_timeout_is_503() {
    let h = harness();
    let req = first_request(&h);
    req.expect_http_call(CLUSTER)
        .respond_json(200, &idp::discovery());
    req.expect_http_call(CLUSTER).time_out();
    assert_idp_failure(&req, 503);
}

#[test]
fn jwks_garbage_is_502() {
    let h = harness();
    let req = first_request(&h);
    req.expect_http_call(CLUSTER)
        .respond_json(200, &idp::discovery());
    req.expect_http_call(CLUSTER)
        .respond(200, &[("content-type", "application/json")], "[1,2,3]");
    assert_idp_failure(&req, 502);
}

#[test]
fn waiting_requests_share_the_failure() {
    let h = harness();
    let first = first_request(&h);
    let second = first_request(&h);
    h.expect_http_call(CLUSTER).time_out();
    assert_idp_failure(&first, 503);
    assert_idp_failure(&second, 503);
}

#[test]
fn a_failed_fetch_is_retried_by_the_next_request() {
    let h = harness();
    let req = first_request(&h);
    req.expect_http_call(CLUSTER).time_out();
    assert_idp_failure(&req, 503);
    // Within the second: the same failure, nothing asked of the IdP
    // (assert_idp_failure expects no call before the answer).
    assert_idp_failure(&first_request(&h), 503);
    // The next second, the next request fetches again.
    h.advance(std::time::Duration::from_secs(1));
    let req = first_request(&h);
    serve_keys(&req);
    req.expect_continue();
}

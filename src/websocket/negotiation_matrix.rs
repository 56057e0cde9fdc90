//! The permessage-deflate negotiation matrix (RFC 7692 §7.1): every
//! parameter as a server meets it in an offer and as a client meets it in
//! a response, each test named after its rule. A test-only file beside
//! `negotiation.rs`, which stays the size of its idea.

use super::negotiation::{
    DeflateAgreement, DeflateConfig, DirectionParams, NegotiationError, accept_deflate_response,
    negotiate_deflate, offer_deflate,
};

fn server(offers: &[&str]) -> Option<(DeflateAgreement, String)> {
    negotiate_deflate(offers.iter().copied(), &DeflateConfig::default())
}

fn dir(window_bits: u8, no_context_takeover: bool) -> DirectionParams {
    DirectionParams {
        window_bits,
        no_context_takeover,
    }
}

fn agreement(own: DirectionParams, peer: DirectionParams) -> DeflateAgreement {
    DeflateAgreement { own, peer }
}

#[test]
fn server_accepts_a_plain_offer_with_full_windows_and_context_takeover() {
    let (agreed, response) = server(&["permessage-deflate"]).unwrap();
    assert_eq!(response, "permessage-deflate");
    assert_eq!(agreed, agreement(dir(15, false), dir(15, false)));
}

#[test]
fn server_honours_each_parameter_of_an_offer() {
    let cases = [
        (
            "permessage-deflate; server_no_context_takeover",
            "permessage-deflate; server_no_context_takeover",
            agreement(dir(15, true), dir(15, false)),
        ),
        (
            "permessage-deflate; client_no_context_takeover",
            "permessage-deflate; client_no_context_takeover",
            agreement(dir(15, false), dir(15, true)),
        ),
        (
            "permessage-deflate; server_max_window_bits=10",
            "permessage-deflate; server_max_window_bits=10",
            agreement(dir(10, false), dir(15, false)),
        ),
        (
            "permessage-deflate; client_max_window_bits=12",
            "permessage-deflate; client_max_window_bits=12",
            agreement(dir(15, false), dir(12, false)),
        ),
        (
            // Without a value: supported, but we ask for no limit.
            "permessage-deflate; client_max_window_bits",
            "permessage-deflate",
            agreement(dir(15, false), dir(15, false)),
        ),
        (
            "PerMessage-Deflate; Server_Max_Window_Bits=\"9\"",
            "permessage-deflate; server_max_window_bits=9",
            agreement(dir(9, false), dir(15, false)),
        ),
    ];
    for (offer, response, agreed) in cases {
        assert_eq!(
            server(&[offer]),
            Some((agreed, response.to_string())),
            "{offer}"
        );
    }
}

#[test]
fn server_config_limits_and_resets_are_applied_and_announced() {
    let config = DeflateConfig {
        own_no_context_takeover: true,
        own_max_window_bits: 11,
        peer_no_context_takeover: true,
        peer_max_window_bits: 10,
        ..DeflateConfig::default()
    };
    let offer = "permessage-deflate; client_max_window_bits";
    let (agreed, response) = negotiate_deflate([offer], &config).unwrap();
    assert_eq!(
        response,
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
         client_max_window_bits=10"
    );
    // Our 11-bit window is used silently: the offer did not name
    // server_max_window_bits, so the response must not (§7.1.2.1).
    assert_eq!(agreed, agreement(dir(11, true), dir(10, true)));
    // A client that cannot limit its window is still accepted.
    let (agreed, _) = negotiate_deflate(["permessage-deflate"], &config).unwrap();
    assert_eq!(agreed.peer, dir(15, true));
}

#[test]
fn server_declines_out_of_range_window_bits() {
    for bits in ["7", "16", "0", "08", "x", "", "100"] {
        for param in ["server_max_window_bits", "client_max_window_bits"] {
            let offer = format!("permessage-deflate; {param}={bits}");
            assert_eq!(server(&[&offer]), None, "{offer}");
        }
    }
    // server_max_window_bits needs a value.
    assert_eq!(
        server(&["permessage-deflate; server_max_window_bits"]),
        None
    );
}

#[test]
fn server_declines_an_offer_that_makes_it_compress_with_8_bits() {
    assert_eq!(
        server(&["permessage-deflate; server_max_window_bits=8"]),
        None
    );
    // The client compressing with 8 is its business: accepted.
    let (agreed, _) = server(&["permessage-deflate; client_max_window_bits=8"]).unwrap();
    assert_eq!(agreed.peer.window_bits, 8);
}

#[test]
fn server_declines_unknown_parameters_and_values_on_flags() {
    for offer in [
        "permessage-deflate; foo",
        "permessage-deflate; server_no_context_takeover=1",
        "permessage-deflate; client_no_context_takeover=\"x\"",
    ] {
        assert_eq!(server(&[offer]), None, "{offer}");
    }
}

#[test]
fn server_declines_duplicate_parameters() {
    for param in [
        "server_no_context_takeover",
        "client_no_context_takeover",
        "server_max_window_bits=10",
        "client_max_window_bits",
    ] {
        let offer = format!("permessage-deflate; {param}; {param}");
        assert_eq!(server(&[&offer]), None, "{offer}");
    }
}

#[test]
fn server_picks_the_first_acceptable_of_several_offers() {
    // In one header, after a bad offer and another extension.
    let (agreed, response) = server(&["permessage-deflate; server_max_window_bits=8, x-other, \
         permessage-deflate; client_max_window_bits=9, permessage-deflate"])
    .unwrap();
    assert_eq!(response, "permessage-deflate; client_max_window_bits=9");
    assert_eq!(agreed.peer.window_bits, 9);
    // Across headers, after a malformed one.
    let (_, response) = server(&[
        "permessage-deflate; =",
        "permessage-deflate; server_no_context_takeover",
    ])
    .unwrap();
    assert_eq!(response, "permessage-deflate; server_no_context_takeover");
    // Nothing acceptable, or nothing offered: no compression.
    assert_eq!(server(&["x-webkit-deflate-frame"]), None);
    assert_eq!(server(&[]), None);
}

#[test]
fn client_offers_what_its_config_asks() {
    assert_eq!(
        offer_deflate(&DeflateConfig::default()),
        "permessage-deflate; client_max_window_bits"
    );
    let config = DeflateConfig {
        own_no_context_takeover: true,
        own_max_window_bits: 8, // compressing needs 9 at least
        peer_no_context_takeover: true,
        peer_max_window_bits: 10,
        ..DeflateConfig::default()
    };
    assert_eq!(
        offer_deflate(&config),
        "permessage-deflate; client_no_context_takeover; client_max_window_bits=9; \
         server_no_context_takeover; server_max_window_bits=10"
    );
}

#[test]
fn client_accepts_what_a_server_answers_to_its_offer() {
    let config = DeflateConfig::default();
    assert_eq!(
        accept_deflate_response("permessage-deflate", &config),
        Ok(agreement(dir(15, false), dir(15, false)))
    );
    // The server may limit and reset the client unasked, and reset
    // itself unasked (§7.1.1, §7.1.2.2).
    let response = "permessage-deflate; client_max_window_bits=10; \
                    client_no_context_takeover; server_no_context_takeover";
    assert_eq!(
        accept_deflate_response(response, &config),
        Ok(agreement(dir(10, true), dir(15, true)))
    );
    // Our own limit and reset hold even if the server is silent.
    let config = DeflateConfig {
        own_no_context_takeover: true,
        own_max_window_bits: 12,
        peer_max_window_bits: 11,
        ..DeflateConfig::default()
    };
    assert_eq!(
        accept_deflate_response("permessage-deflate; server_max_window_bits=9", &config),
        Ok(agreement(dir(12, true), dir(9, false)))
    );
}

#[test]
fn client_accepts_a_server_window_limit_it_did_not_ask_for() {
    // §7.1.2.1 lets a server name its smaller window unasked (Python's
    // websockets does by default); a larger inflate window than the
    // sender's always decodes its stream.
    let config = DeflateConfig::default();
    let agreed =
        accept_deflate_response("permessage-deflate; server_max_window_bits=10", &config).unwrap();
    assert_eq!(agreed.peer.window_bits, 10);
}

#[test]
fn client_rejects_a_response_with_a_parameter_it_did_not_offer() {
    let config = DeflateConfig::default();
    for response in [
        "permessage-deflate; foo",
        "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
        "permessage-deflate; client_max_window_bits=16",
    ] {
        assert!(
            matches!(
                accept_deflate_response(response, &config),
                Err(NegotiationError::UnexpectedParameter(_))
            ),
            "{response}"
        );
    }
}

#[test]
fn client_rejects_client_max_window_bits_without_a_value_or_above_its_offer() {
    let config = DeflateConfig {
        own_max_window_bits: 10,
        peer_max_window_bits: 10,
        ..DeflateConfig::default()
    };
    for response in [
        "permessage-deflate; client_max_window_bits",
        "permessage-deflate; client_max_window_bits=11",
        "permessage-deflate; server_max_window_bits=11",
    ] {
        assert!(
            matches!(
                accept_deflate_response(response, &config),
                Err(NegotiationError::InvalidValue(_))
            ),
            "{response}"
        );
    }
}

#[test]
fn client_rejects_a_limit_of_8_bits_on_its_compressor() {
    assert_eq!(
        accept_deflate_response(
            "permessage-deflate; client_max_window_bits=8",
            &DeflateConfig::default()
        ),
        Err(NegotiationError::UnsupportedWindowBits)
    );
}

#[test]
fn client_rejects_other_extensions_a_second_deflate_and_bad_syntax() {
    let config = DeflateConfig::default();
    assert_eq!(
        accept_deflate_response("x-other", &config),
        Err(NegotiationError::UnofferedExtension("x-other".into()))
    );
    assert_eq!(
        accept_deflate_response("permessage-deflate, permessage-deflate", &config),
        Err(NegotiationError::UnofferedExtension(
            "permessage-deflate".into()
        ))
    );
    for bad in ["", "permessage-deflate;", "permessage-deflate; a=\"b c\""] {
        assert_eq!(
            accept_deflate_response(bad, &config),
            Err(NegotiationError::Syntax),
            "{bad:?}"
        );
    }
}

#[test]
fn what_a_server_answers_a_client_accepts() {
    let configs = [
        DeflateConfig::default(),
        DeflateConfig {
            own_no_context_takeover: true,
            own_max_window_bits: 9,
            peer_no_context_takeover: true,
            peer_max_window_bits: 12,
            ..DeflateConfig::default()
        },
    ];
    for client in &configs {
        for server in &configs {
            let offer = offer_deflate(client);
            let (server_side, response) = negotiate_deflate([offer.as_str()], server).unwrap();
            let client_side = accept_deflate_response(&response, client).unwrap();
            // What one compresses with, the other expects.
            assert!(client_side.own.window_bits <= server_side.peer.window_bits);
            assert!(server_side.own.window_bits <= client_side.peer.window_bits);
            assert_eq!(
                client_side.peer.no_context_takeover,
                server_side.own.no_context_takeover
            );
        }
    }
}

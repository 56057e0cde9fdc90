//! The `cyclone` command's logging: access lines (`cyclone::access`)
//! through the buffered access log to `--access-log`'s destination (or
//! nowhere), everything else to stdout; `--log-level`/`RUST_LOG` filter
//! both.
//!
//! One routing layer under one global filter, not a per-layer filter for
//! each destination: with per-layer filters that disagree about a call
//! site (the access log wants it, the other lines do not), tracing can no
//! longer cache the call site's interest, and every access event and
//! every `enabled!` check walks the whole subscriber stack: about 500
//! instructions per request, 8% of the web layer's pipelined cost
//! (`bench/callgrind.sh`). Routed by target, each call site's interest is
//! settled once: never for the access lines when the log is off or the
//! level hides them.

use tracing::subscriber::Interest;
use tracing::{Event, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

use crate::access_log::{self, Buffered, Destination, Lines};

/// The access log's tracing target (`cyclone::web`'s).
const ACCESS: &str = "cyclone::access";

/// Installs the global subscriber.
pub fn init(filter: tracing_subscriber::EnvFilter, access: &Destination) {
    use tracing_subscriber::fmt::writer::BoxMakeWriter;
    use tracing_subscriber::prelude::*;
    // Colours only for a terminal: a log file or pipe gets plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    // Sharing stdout with the access log, the other lines go through its
    // writer thread too (in order with the access lines, and the loop
    // never waits on stdout's lock held by a stalled writer); otherwise
    // straight to stdout.
    let writer = if *access == Destination::Stdout {
        BoxMakeWriter::new(Buffered { at_once: true })
    } else {
        BoxMakeWriter::new(std::io::stdout)
    };
    let others = tracing_subscriber::fmt::layer()
        .with_ansi(ansi)
        .with_writer(writer);
    // In colour on a terminal, the access lines go through `fmt`'s own
    // formatter (a person reads them); plain, through the cheap one.
    let access_layer: Option<Boxed> = match access {
        Destination::Off => None,
        Destination::Stdout if ansi => Some(Box::new(
            tracing_subscriber::fmt::layer()
                .with_ansi(true)
                .with_writer(access_log::Buffered { at_once: false }),
        )),
        _ => Some(Box::new(Lines)),
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(Route {
            access: access_layer,
            others,
        })
        .init();
}

/// The subscriber the routed layers sit on.
type Base =
    tracing_subscriber::layer::Layered<tracing_subscriber::EnvFilter, tracing_subscriber::Registry>;
/// The access lines' layer, one of two kinds.
type Boxed = Box<dyn Layer<Base> + Send + Sync>;

/// Sends the access lines to `access` (none: they are off) and every
/// other event to `others`; spans go to both.
struct Route<A, O> {
    access: Option<A>,
    others: O,
}

impl<S, A, O> Layer<S> for Route<A, O>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    A: Layer<S>,
    O: Layer<S>,
{
    fn on_layer(&mut self, subscriber: &mut S) {
        self.others.on_layer(subscriber);
        if let Some(a) = &mut self.access {
            a.on_layer(subscriber);
        }
    }

    fn register_callsite(&self, meta: &'static Metadata<'static>) -> Interest {
        if meta.target() != ACCESS {
            return self.others.register_callsite(meta);
        }
        match &self.access {
            Some(a) => a.register_callsite(meta),
            None => Interest::never(),
        }
    }

    fn enabled(&self, meta: &Metadata<'_>, cx: Context<'_, S>) -> bool {
        if meta.target() != ACCESS {
            return self.others.enabled(meta, cx);
        }
        self.access.as_ref().is_some_and(|a| a.enabled(meta, cx))
    }

    fn on_event(&self, event: &Event<'_>, cx: Context<'_, S>) {
        if event.metadata().target() != ACCESS {
            self.others.on_event(event, cx);
        } else if let Some(a) = &self.access {
            a.on_event(event, cx);
        }
    }

    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        cx: Context<'_, S>,
    ) {
        if let Some(a) = &self.access {
            a.on_new_span(attrs, id, cx.clone());
        }
        self.others.on_new_span(attrs, id, cx);
    }

    fn on_record(
        &self,
        id: &tracing::span::Id,
        values: &tracing::span::Record<'_>,
        cx: Context<'_, S>,
    ) {
        if let Some(a) = &self.access {
            a.on_record(id, values, cx.clone());
        }
        self.others.on_record(id, values, cx);
    }

    fn on_follows_from(
        &self,
        id: &tracing::span::Id,
        follows: &tracing::span::Id,
        cx: Context<'_, S>,
    ) {
        if let Some(a) = &self.access {
            a.on_follows_from(id, follows, cx.clone());
        }
        self.others.on_follows_from(id, follows, cx);
    }

    fn on_enter(&self, id: &tracing::span::Id, cx: Context<'_, S>) {
        if let Some(a) = &self.access {
            a.on_enter(id, cx.clone());
        }
        self.others.on_enter(id, cx);
    }

    fn on_exit(&self, id: &tracing::span::Id, cx: Context<'_, S>) {
        if let Some(a) = &self.access {
            a.on_exit(id, cx.clone());
        }
        self.others.on_exit(id, cx);
    }

    fn on_close(&self, id: tracing::span::Id, cx: Context<'_, S>) {
        if let Some(a) = &self.access {
            a.on_close(id.clone(), cx.clone());
        }
        self.others.on_close(id, cx);
    }

    fn on_id_change(&self, old: &tracing::span::Id, new: &tracing::span::Id, cx: Context<'_, S>) {
        if let Some(a) = &self.access {
            a.on_id_change(old, new, cx.clone());
        }
        self.others.on_id_change(old, new, cx);
    }
}

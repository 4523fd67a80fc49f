//! The request scope: the tenant (and span) of the request being served,
//! seen by everything recorded while it runs.
//!
//! The HTTP and gRPC server layers run each request inside a [`Scope`]: a
//! database query, a Redis command, a cache lookup or an outbound call made
//! while the handler runs records under the request's tenant without being
//! passed it ([`current_tenant`]). Outside a request the tenant is
//! `__system__`.
//!
//! The scope follows the request's future, poll by poll, on whatever thread
//! polls it. It does **not** cross `tokio::spawn` (a spawned task is
//! another future): carry it with one call,
//! `tokio::spawn(plimsoll_core::scope::carry(async move { … }))`.
//!
//! # Example
//!
//! ```
//! use plimsoll_core::scope::{self, Scope};
//! use plimsoll_core::Telemetry;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let telemetry = Telemetry::builder().build().unwrap();
//! let acme = telemetry.tenant("acme");
//!
//! let seen = Scope::new(acme).run(async {
//!     // deep inside a handler: nobody passed the tenant down
//!     scope::current_tenant()
//! }).await;
//! assert_eq!(seen.as_str(), "acme");
//! assert_eq!(scope::current_tenant().as_str(), "__system__");
//!
//! // A spawned task is another future: carry the scope into it.
//! let carried = Scope::new(telemetry.tenant("globex"))
//!     .run(async { tokio::spawn(scope::carry(async { scope::current_tenant() })).await.unwrap() })
//!     .await;
//! assert_eq!(carried.as_str(), "globex");
//! # }
//! ```

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::task::{Context, Poll};

use pin_project_lite::pin_project;

use crate::tenant::Tenant;
use crate::trace::SpanContext;

/// What is known of the request being served: its tenant and its span.
///
/// A handle (one pointer, cheap to clone): entering and leaving a scope at
/// every poll of a request's future moves only the pointer.
#[derive(Clone, Debug)]
pub struct Scope {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    tenant: Tenant,
    span: Option<SpanContext>,
    /// The queries run inside it, when it counts them ([`Scope::counting`]);
    /// shared with the scopes nested in it by inner server layers.
    queries: Option<Arc<AtomicU32>>,
    /// Whether this scope's layer reports the count (the outermost one).
    owns_count: bool,
}

thread_local! {
    static CURRENT: RefCell<Option<Scope>> = const { RefCell::new(None) };
}

/// Swaps `slot` with the thread's current scope; false when the thread's
/// slot cannot be reached (being torn down, or borrowed by a caller of
/// [`with_current`] that polls a future: then nothing changes).
#[inline]
fn swap(slot: &mut Option<Scope>) -> bool {
    CURRENT
        .try_with(|current| match current.try_borrow_mut() {
            Ok(mut current) => {
                std::mem::swap(&mut *current, slot);
                true
            }
            Err(_) => false,
        })
        .unwrap_or(false)
}

/// Puts a swapped-out scope back when dropped, panics included.
struct Restore<'a> {
    slot: &'a mut Option<Scope>,
    entered: bool,
}

impl Drop for Restore<'_> {
    #[inline]
    fn drop(&mut self) {
        if self.entered {
            swap(self.slot);
        }
    }
}

impl Scope {
    /// A scope for `tenant`, with no span.
    pub fn new(tenant: Tenant) -> Self {
        Self::with_span(tenant, None)
    }

    /// A scope for `tenant` running in `span` (the server layers use the
    /// incoming `traceparent`, or the trace-context hook's span).
    pub fn with_span(tenant: Tenant, span: Option<SpanContext>) -> Self {
        Self {
            inner: Arc::new(Inner {
                tenant,
                span,
                queries: None,
                owns_count: false,
            }),
        }
    }

    /// A scope of one request that counts the database queries run inside
    /// it ([`count_query`]): the server layers open one per request when the
    /// telemetry has a [`RequestObserver`].
    ///
    /// Inside a request that already counts (a gRPC layer inside an HTTP
    /// one), the new scope adds to the outer count and does not own it:
    /// the outermost layer reports the request, once.
    pub fn counting(tenant: Tenant, span: Option<SpanContext>) -> Self {
        let outer = with_current(|scope| scope.and_then(|s| s.inner.queries.clone()));
        let owns_count = outer.is_none();
        Self {
            inner: Arc::new(Inner {
                tenant,
                span,
                queries: Some(outer.unwrap_or_default()),
                owns_count,
            }),
        }
    }

    /// Whether this scope owns its query count: the layer that opened it
    /// is the outermost of the request and reports it when it ends.
    pub fn owns_count(&self) -> bool {
        self.inner.owns_count
    }

    /// The queries counted in this scope so far; `None` when it does not
    /// count them (it was not opened with [`Scope::counting`]).
    pub fn queries(&self) -> Option<u32> {
        Some(self.inner.queries.as_ref()?.load(Ordering::Relaxed))
    }

    /// The request's tenant.
    #[inline]
    pub fn tenant(&self) -> &Tenant {
        &self.inner.tenant
    }

    /// The request's span, if one was given.
    #[inline]
    pub fn span(&self) -> Option<SpanContext> {
        self.inner.span
    }

    /// Runs `future` inside this scope.
    pub fn run<F: Future>(self, future: F) -> Scoped<F> {
        Scoped {
            inner: future,
            scope: Some(self),
        }
    }

    /// Runs `f` inside this scope, on this thread.
    pub fn enter<R>(&self, f: impl FnOnce() -> R) -> R {
        let mut slot = Some(self.clone());
        let entered = swap(&mut slot);
        let restore = Restore {
            slot: &mut slot,
            entered,
        };
        let result = f();
        drop(restore);
        result
    }
}

/// Runs `poll` with the scope held in `slot` current (nothing changes when
/// `slot` is `None`), for middleware that holds a scope and polls an inner
/// future or body by hand. While it runs, `slot` holds the outer scope.
#[inline]
pub fn poll_in<T>(slot: &mut Option<Scope>, poll: impl FnOnce() -> T) -> T {
    let entered = slot.is_some() && swap(slot);
    let _restore = Restore { slot, entered };
    poll()
}

/// Calls `f` with the current scope (`None` outside any request).
#[inline]
pub fn with_current<R>(f: impl FnOnce(Option<&Scope>) -> R) -> R {
    let mut f = Some(f);
    let result = CURRENT.try_with(|current| match current.try_borrow() {
        Ok(current) => Some((f.take().expect("called once"))(current.as_ref())),
        Err(_) => None,
    });
    match result {
        Ok(Some(r)) => r,
        _ => (f.take().expect("called once"))(None),
    }
}

/// Counts one database query in the current request's scope (nothing
/// outside a request, or in a scope that does not count). Database
/// integrations call it once per statement; the count reaches the
/// telemetry's [`RequestObserver`]s when the request ends.
#[inline]
pub fn count_query() {
    with_current(|scope| {
        if let Some(queries) = scope.and_then(|s| s.inner.queries.as_ref()) {
            queries.fetch_add(1, Ordering::Relaxed);
        }
    });
}

/// Sees every request a server layer served, when it ends (see
/// [`Telemetry::observe_requests`](crate::Telemetry::observe_requests)).
///
/// The database integration records `db_queries_per_request` with one: the
/// count of queries a request ran, by route, and a warning past a threshold.
pub trait RequestObserver: Send + Sync + 'static {
    /// The request on `route` (its template, bounded by the server layer)
    /// ended; `scope` holds its tenant, span and query count.
    fn request_ended(&self, route: &str, scope: &Scope);
}

/// A clone of the current scope (`None` outside any request).
pub fn current() -> Option<Scope> {
    with_current(|scope| scope.cloned())
}

/// The tenant of the current request; `__system__` outside any request.
#[inline]
pub fn current_tenant() -> Tenant {
    with_current(|scope| scope.map_or_else(Tenant::system, |s| s.tenant().clone()))
}

/// Runs `future` in the current scope, wherever it is polled later: the
/// one-line way to carry a request's tenant into `tokio::spawn`. Outside
/// any request, the future runs without a scope.
pub fn carry<F: Future>(future: F) -> Scoped<F> {
    Scoped {
        inner: future,
        scope: current(),
    }
}

pin_project! {
    /// A future that runs inside a [`Scope`]; see [`Scope::run`] and [`carry`].
    #[derive(Debug)]
    pub struct Scoped<F> {
        #[pin]
        inner: F,
        scope: Option<Scope>,
    }
}

impl<F: Future> Future for Scoped<F> {
    type Output = F::Output;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let inner = this.inner;
        poll_in(this.scope, || inner.poll(cx))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noop_poll<F: Future>(f: F) -> Poll<F::Output> {
        let mut f = std::pin::pin!(f);
        f.as_mut()
            .poll(&mut Context::from_waker(std::task::Waker::noop()))
    }

    #[test]
    fn nested_scopes_restore_the_outer_one() {
        let outer = Scope::new(Tenant::unknown());
        let seen = noop_poll(outer.run(async {
            let Poll::Ready(inner) =
                noop_poll(Scope::new(Tenant::system()).run(async { current_tenant() }))
            else {
                panic!("ready")
            };
            (inner, current_tenant())
        }));
        let Poll::Ready((inner, after)) = seen else {
            panic!("ready")
        };
        assert_eq!(inner.as_str(), "__system__");
        assert_eq!(after.as_str(), "__unknown__");
        assert!(current().is_none());
    }

    #[test]
    fn a_panic_inside_a_scope_does_not_leak_it() {
        let result = std::panic::catch_unwind(|| {
            noop_poll(Scope::new(Tenant::unknown()).run(async { panic!("boom") }))
        });
        assert!(result.is_err());
        assert!(current().is_none());
    }

    #[test]
    fn counting_scopes_count_the_queries_run_inside_them() {
        let counting = Scope::counting(Tenant::unknown(), None);
        let plain = Scope::new(Tenant::unknown());
        counting.enter(|| {
            count_query();
            count_query();
            // A layer nested inside adds to the same count, and does not own it.
            let nested = Scope::counting(Tenant::unknown(), None);
            nested.enter(count_query);
            assert!(!nested.owns_count());
            assert_eq!(nested.queries(), Some(3));
        });
        assert!(counting.owns_count());
        plain.enter(count_query);
        count_query(); // outside any scope: nothing to count
        let carried = counting.enter(|| carry(async { count_query() }));
        let _ = noop_poll(carried);
        assert_eq!(counting.queries(), Some(4));
        assert_eq!(plain.queries(), None);
    }

    #[test]
    fn enter_runs_synchronous_code_in_the_scope() {
        let scope = Scope::new(Tenant::unknown());
        assert_eq!(scope.enter(current_tenant).as_str(), "__unknown__");
        assert_eq!(current_tenant().as_str(), "__system__");
    }
}

//! When a pruning run must stop: a point in time (Lambda's deadline minus a margin) or, for
//! tests and callers with their own budget, any condition.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

type Condition = Arc<dyn Fn() -> bool + Send + Sync>;

/// Checked before every page read and every delete batch; once reached, the run stops cleanly.
#[derive(Clone, Default)]
pub struct Deadline(Option<Condition>);

impl Deadline {
    /// No deadline: run to completion.
    pub fn none() -> Self {
        Self(None)
    }

    /// Reached once the clock passes `instant`.
    pub fn at(instant: Instant) -> Self {
        Self::when(move || Instant::now() >= instant)
    }

    /// `margin` before a wall-clock deadline such as `lambda_runtime::Context::deadline()`.
    /// A deadline already past (or within the margin) is reached at once.
    pub fn before(deadline: SystemTime, margin: Duration) -> Self {
        let remaining = deadline
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO)
            .saturating_sub(margin);
        // A deadline too far away to represent is no deadline at all.
        Instant::now()
            .checked_add(remaining)
            .map_or_else(Self::none, Self::at)
    }

    /// Reached whenever `condition` returns true.
    pub fn when(condition: impl Fn() -> bool + Send + Sync + 'static) -> Self {
        Self(Some(Arc::new(condition)))
    }

    /// True once the run must stop (never for [`Deadline::none`]); cheap enough to call before
    /// every request.
    pub fn reached(&self) -> bool {
        self.0.as_ref().is_some_and(|condition| condition())
    }
}

impl fmt::Debug for Deadline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Some(_) => f.write_str("Deadline(set)"),
            None => f.write_str("Deadline(none)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn none_is_never_reached() {
        assert!(!Deadline::none().reached());
    }

    #[test]
    fn a_deadline_within_the_margin_is_reached_at_once() {
        let soon = SystemTime::now() + Duration::from_secs(5);
        assert!(Deadline::before(soon, Duration::from_secs(10)).reached());
    }

    #[test]
    fn a_deadline_beyond_the_margin_is_not_reached_yet() {
        let later = SystemTime::now() + Duration::from_secs(60);
        assert!(!Deadline::before(later, Duration::from_secs(10)).reached());
    }

    #[test]
    fn a_past_deadline_is_reached() {
        let past = SystemTime::UNIX_EPOCH;
        assert!(Deadline::before(past, Duration::ZERO).reached());
    }
}

//! `metav1.Condition` helpers: set a condition so that `lastTransitionTime` changes only when the
//! status changes (apimachinery `meta.SetStatusCondition`).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

/// `"True"`, `"False"` or `"Unknown"`, as `metav1.ConditionStatus`.
pub mod status {
    /// The condition holds.
    pub const TRUE: &str = "True";
    /// The condition does not hold.
    pub const FALSE: &str = "False";
    /// The controller cannot tell.
    pub const UNKNOWN: &str = "Unknown";
}

/// A condition of `type_` with `status`, `reason` and `message`, transitioned now.
pub fn new_condition(type_: &str, status: &str, reason: &str, message: &str) -> Condition {
    Condition {
        type_: type_.to_owned(),
        status: status.to_owned(),
        reason: reason.to_owned(),
        message: message.to_owned(),
        observed_generation: None,
        last_transition_time: Time(k8s_openapi::jiff::Timestamp::now()),
    }
}

/// Sets `new` in `conditions`, replacing the condition of the same type. If that condition exists
/// with the same status, its `lastTransitionTime` is kept; reason, message and observed generation
/// are always taken from `new`. Returns true when anything changed (so the caller knows whether a
/// status write is needed).
pub fn set_condition(conditions: &mut Vec<Condition>, new: Condition) -> bool {
    match conditions.iter_mut().find(|c| c.type_ == new.type_) {
        None => {
            conditions.push(new);
            true
        }
        Some(existing) => {
            let transition = if existing.status == new.status {
                existing.last_transition_time.clone()
            } else {
                new.last_transition_time.clone()
            };
            let merged = Condition {
                last_transition_time: transition,
                ..new
            };
            let changed = *existing != merged;
            *existing = merged;
            changed
        }
    }
}

/// Sets every condition of `new` in `conditions` (see [`set_condition`]); true if any changed.
pub fn merge_conditions(
    conditions: &mut Vec<Condition>,
    new: impl IntoIterator<Item = Condition>,
) -> bool {
    new.into_iter()
        .fold(false, |changed, c| set_condition(conditions, c) | changed)
}

/// Removes the condition of `type_`; true if it was present.
pub fn remove_condition(conditions: &mut Vec<Condition>, type_: &str) -> bool {
    let before = conditions.len();
    conditions.retain(|c| c.type_ != type_);
    conditions.len() != before
}

/// The condition of `type_`, if present.
pub fn find_condition<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// True if the condition of `type_` is present with status `"True"`.
pub fn is_condition_true(conditions: &[Condition], type_: &str) -> bool {
    find_condition(conditions, type_).is_some_and(|c| c.status == status::TRUE)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64, cond: Condition) -> Condition {
        Condition {
            last_transition_time: Time(k8s_openapi::jiff::Timestamp::from_second(secs).unwrap()),
            ..cond
        }
    }

    #[test]
    fn transition_time_changes_only_with_status() {
        let mut conds = Vec::new();
        assert!(set_condition(
            &mut conds,
            at(
                100,
                new_condition("Ready", status::FALSE, "Creating", "starting")
            )
        ));
        assert!(set_condition(
            &mut conds,
            at(
                200,
                new_condition("Ready", status::FALSE, "Waiting", "pods pending")
            )
        ));
        assert_eq!(conds.len(), 1);
        assert_eq!(conds[0].reason, "Waiting", "reason updated");
        assert_eq!(
            conds[0].last_transition_time,
            at(100, conds[0].clone()).last_transition_time,
            "same status keeps the time"
        );
        assert!(set_condition(
            &mut conds,
            at(
                300,
                new_condition("Ready", status::TRUE, "Running", "all up")
            )
        ));
        assert_eq!(
            conds[0].last_transition_time.0.as_second(),
            300,
            "status change moves the time"
        );
        assert!(
            !set_condition(
                &mut conds,
                at(
                    400,
                    new_condition("Ready", status::TRUE, "Running", "all up")
                )
            ),
            "no-op reports no change"
        );
        assert!(is_condition_true(&conds, "Ready"));
    }

    #[test]
    fn merge_and_remove() {
        let mut conds = vec![new_condition("A", status::TRUE, "R", "")];
        let changed = merge_conditions(
            &mut conds,
            [
                new_condition("B", status::FALSE, "R", ""),
                new_condition("A", status::TRUE, "R", ""),
            ],
        );
        assert!(changed);
        assert_eq!(conds.len(), 2);
        assert!(remove_condition(&mut conds, "A"));
        assert!(!remove_condition(&mut conds, "A"));
        assert!(find_condition(&conds, "B").is_some());
    }
}

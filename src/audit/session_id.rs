//! Session ids: the name of one agent run's audit files and the `status.sessionId` of its Incident.
//!
//! The format `{UTC YYYY-MM-DDTHH-MM-SS}-{8 hex}` sorts by start time in a plain `ls`, is safe as a file
//! name and as a Kubernetes label value (no `:`), and the random suffix keeps two runs that start in the
//! same second apart.

use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::tz::Offset;

/// Length of `YYYY-MM-DDTHH-MM-SS`.
const TIME_PART_LEN: usize = 19;
/// Length of the random hex suffix.
const SUFFIX_LEN: usize = 8;
/// Length of a whole session id.
pub const SESSION_ID_LEN: usize = TIME_PART_LEN + 1 + SUFFIX_LEN;

/// `{UTC YYYY-MM-DDTHH-MM-SS}-{first 8 hex of a uuid4}`, e.g. `2026-01-28T09-42-35-2886f5df`.
pub fn new_session_id(now: Timestamp) -> String {
    let utc = Offset::UTC.to_datetime(now);
    let random = uuid::Uuid::new_v4().simple().to_string();
    // A uuid's simple form is 32 lowercase hex digits, so the first 8 always exist.
    let suffix = random.get(..SUFFIX_LEN).unwrap_or(&random);
    format!(
        "{:04}-{:02}-{:02}T{:02}-{:02}-{:02}-{suffix}",
        utc.year(),
        utc.month(),
        utc.day(),
        utc.hour(),
        utc.minute(),
        utc.second(),
    )
}

/// Whether `s` is exactly a session id as [`new_session_id`] makes them: a real calendar time and 8
/// lowercase hex digits.
pub fn is_valid_session_id(s: &str) -> bool {
    if s.len() != SESSION_ID_LEN || !s.is_ascii() {
        return false;
    }
    let (time_part, rest) = s.split_at(TIME_PART_LEN);
    let Some(suffix) = rest.strip_prefix('-') else {
        return false;
    };
    let suffix_ok = suffix
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    // strptime alone accepts a few lenient spellings (e.g. a one-digit month), so the fixed length above
    // and the digit check here pin the exact shape; strptime then rejects impossible dates.
    let digits_ok = time_part.bytes().enumerate().all(|(i, b)| match i {
        4 | 7 | 13 | 16 => b == b'-',
        10 => b == b'T',
        _ => b.is_ascii_digit(),
    });
    suffix_ok && digits_ok && DateTime::strptime("%Y-%m-%dT%H-%M-%S", time_part).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(rfc3339: &str) -> Timestamp {
        rfc3339.parse().expect("test timestamp parses")
    }

    #[test]
    fn new_id_has_utc_time_and_hex_suffix() {
        let id = new_session_id(at("2026-01-28T09:42:35.987Z"));
        assert_eq!(id.len(), SESSION_ID_LEN, "{id}");
        assert!(id.starts_with("2026-01-28T09-42-35-"), "{id}");
        assert!(is_valid_session_id(&id), "{id}");
    }

    #[test]
    fn new_id_uses_utc_not_the_offset_of_the_input() {
        let id = new_session_id(at("2026-01-28T23:30:00-02:00"));
        assert!(id.starts_with("2026-01-29T01-30-00-"), "{id}");
    }

    #[test]
    fn two_ids_in_the_same_second_differ() {
        let now = at("2026-01-28T09:42:35Z");
        assert_ne!(new_session_id(now), new_session_id(now));
    }

    #[test]
    fn validity_rejects_wrong_shapes() {
        assert!(is_valid_session_id("2026-01-28T09-42-35-2886f5df"));
        for bad in [
            "",
            "2026-01-28T09-42-35",
            "2026-01-28T09-42-35-2886f5d",
            "2026-01-28T09-42-35-2886f5dff",
            "2026-01-28T09-42-35-2886F5DF",
            "2026-01-28T09-42-35-2886f5dg",
            "2026-01-28T09:42:35-2886f5df",
            "2026-13-28T09-42-35-2886f5df",
            "2026-02-30T09-42-35-2886f5df",
            "2026-01-28T25-42-35-2886f5df",
            "2026-01-28 09-42-35-2886f5df",
            "2026-01-28T09-42-35_2886f5df",
            "../../etc/passwd-aaaaaaaaaaaaaa",
            "2026-01-28T09-42-35-2886f5d\u{e9}",
        ] {
            assert!(!is_valid_session_id(bad), "accepted {bad:?}");
        }
    }
}

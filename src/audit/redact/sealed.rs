//! The one exit path: a [`Redacted`] value can only be made by a [`Redactor`], so any writer that
//! takes one (the Incident's status, the termination message, progress patches, `investigate`'s
//! printed and `--json` output, and notifications later) cannot be handed unredacted text by mistake.
//! The field is private and there is no `Deserialize`, no `From` and no mutable access: the only ways
//! in are [`Redactor::seal`] and [`Redactor::seal_text`].

use std::borrow::Cow;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::Redactor;

/// A value whose every string has been through a [`Redactor`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Redacted<T>(T);

/// A value whose redacted JSON no longer fits its type (a configured secret equal to an enum's
/// spelling, say): it is withheld rather than passed on unredacted.
#[derive(Debug, thiserror::Error)]
#[error("the value no longer parses after redaction, so it is withheld")]
pub struct SealError(#[source] serde_json::Error);

impl<T> Redacted<T> {
    /// The redacted value, read-only.
    pub fn get(&self) -> &T {
        &self.0
    }
}

impl<T> std::ops::Deref for Redacted<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> Redacted<Vec<T>> {
    /// An empty list holds no text, so it needs no redactor.
    pub fn empty() -> Self {
        Redacted(Vec::new())
    }
}

impl<T> Default for Redacted<Vec<T>> {
    fn default() -> Self {
        Self::empty()
    }
}

impl Redacted<String> {
    /// At most `max_chars` characters, with `…` when cut. Cutting redacted text keeps it redacted
    /// (at worst a marker is cut short).
    pub fn shorten(&self, max_chars: usize) -> Redacted<String> {
        match self.0.char_indices().nth(max_chars) {
            Some((i, _)) => Redacted(format!("{}…", &self.0[..i])),
            None => self.clone(),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Redacted<String> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Redactor {
    /// Redacts every string inside `value` (through its JSON form) and seals it.
    pub fn seal<T: Serialize + DeserializeOwned>(
        &self,
        value: &T,
    ) -> Result<Redacted<T>, SealError> {
        let mut json = serde_json::to_value(value).map_err(SealError)?;
        self.redact_json(&mut json);
        serde_json::from_value(json)
            .map(Redacted)
            .map_err(SealError)
    }

    /// Redacts `text` and seals it.
    pub fn seal_text(&self, text: &str) -> Redacted<String> {
        Redacted(match self.redact(text) {
            Cow::Borrowed(same) => same.to_string(),
            Cow::Owned(redacted) => redacted,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Serialize, serde::Deserialize, PartialEq)]
    struct Note {
        text: String,
        items: Vec<String>,
    }

    #[test]
    fn sealing_redacts_every_string() {
        let r = Redactor::new(["configured-secret-value".to_string()]);
        let note = Note {
            text: "key configured-secret-value".into(),
            items: vec!["DB_PASSWORD=hunter22".into()],
        };
        let sealed = r.seal(&note).unwrap();
        assert_eq!(sealed.text, "key [REDACTED:secret]");
        assert_eq!(sealed.items[0], "DB_PASSWORD=[REDACTED:credential]");
        assert_eq!(
            r.seal_text("x configured-secret-value").as_str(),
            "x [REDACTED:secret]"
        );
        assert_eq!(r.seal_text("abcdef").shorten(3).as_str(), "abc…");
    }
}

//! Logging set-up for the controller: text or JSON lines on stderr, filtered by a `tracing` filter
//! (`info`, `info,incident_operator=debug`, …).

use tracing_subscriber::EnvFilter;

use super::flags::LogFormat;

/// Why logging could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The filter does not parse.
    #[error("invalid log level {filter:?}")]
    Filter {
        filter: String,
        #[source]
        source: tracing_subscriber::filter::ParseError,
    },
    /// A global subscriber was already installed.
    #[error("a logger is already installed: {0}")]
    AlreadyInstalled(String),
}

/// Installs the global subscriber.
pub fn init_logging(format: LogFormat, filter: &str) -> Result<(), TelemetryError> {
    let env_filter = EnvFilter::try_new(filter).map_err(|source| TelemetryError::Filter {
        filter: filter.to_string(),
        source,
    })?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(env_filter)
        .with_writer(std::io::stderr);
    let installed = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
    installed.map_err(|error| TelemetryError::AlreadyInstalled(error.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_filters_are_refused_before_anything_is_installed() {
        let error = init_logging(LogFormat::Text, "info,[broken").unwrap_err();
        assert!(matches!(error, TelemetryError::Filter { .. }), "{error}");
    }
}

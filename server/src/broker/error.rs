//! The broker's error type. Every failure the broker reports to a client is a
//! `BrokerError`: a RabbitMQ error kind plus a human sentence. The AMQP layer
//! turns it into a channel or connection close (`reply_code`, `reply_text`),
//! the HTTP layer into a status code and `{"error","reason"}` JSON.

use std::fmt;

/// RabbitMQ's error names, with AMQP 0-9-1's reply codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ErrorKind {
    ContentTooLarge,
    NoRoute,
    ConnectionForced,
    InvalidPath,
    AccessRefused,
    NotFound,
    ResourceLocked,
    PreconditionFailed,
    FrameError,
    SyntaxError,
    CommandInvalid,
    ChannelError,
    UnexpectedFrame,
    ResourceError,
    NotAllowed,
    NotImplemented,
    InternalError,
    /// The cluster cannot do it now (no majority, a node that does not
    /// answer): 541 over AMQP, 503 over HTTP.
    Unavailable,
}

impl ErrorKind {
    pub fn reply_code(self) -> u16 {
        use ErrorKind::*;
        match self {
            ContentTooLarge => 311,
            NoRoute => 312,
            ConnectionForced => 320,
            InvalidPath => 402,
            AccessRefused => 403,
            NotFound => 404,
            ResourceLocked => 405,
            PreconditionFailed => 406,
            FrameError => 501,
            SyntaxError => 502,
            CommandInvalid => 503,
            ChannelError => 504,
            UnexpectedFrame => 505,
            ResourceError => 506,
            NotAllowed => 530,
            NotImplemented => 540,
            InternalError | Unavailable => 541,
        }
    }

    /// The name RabbitMQ puts in front of a reply text, e.g. `NOT_FOUND`.
    pub fn name(self) -> &'static str {
        use ErrorKind::*;
        match self {
            ContentTooLarge => "CONTENT_TOO_LARGE",
            NoRoute => "NO_ROUTE",
            ConnectionForced => "CONNECTION_FORCED",
            InvalidPath => "INVALID_PATH",
            AccessRefused => "ACCESS_REFUSED",
            NotFound => "NOT_FOUND",
            ResourceLocked => "RESOURCE_LOCKED",
            PreconditionFailed => "PRECONDITION_FAILED",
            FrameError => "FRAME_ERROR",
            SyntaxError => "SYNTAX_ERROR",
            CommandInvalid => "COMMAND_INVALID",
            ChannelError => "CHANNEL_ERROR",
            UnexpectedFrame => "UNEXPECTED_FRAME",
            ResourceError => "RESOURCE_ERROR",
            NotAllowed => "NOT_ALLOWED",
            NotImplemented => "NOT_IMPLEMENTED",
            InternalError | Unavailable => "INTERNAL_ERROR",
        }
    }

    /// Soft errors close the channel; hard errors close the connection.
    /// The split follows the AMQP 0-9-1 specification, as RabbitMQ does.
    pub fn is_hard(self) -> bool {
        !matches!(
            self,
            ErrorKind::ContentTooLarge
                | ErrorKind::NoRoute
                | ErrorKind::AccessRefused
                | ErrorKind::NotFound
                | ErrorKind::ResourceLocked
                | ErrorKind::PreconditionFailed
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BrokerError {
    pub kind: ErrorKind,
    pub message: String,
}

pub type Result<T, E = BrokerError> = std::result::Result<T, E>;

impl BrokerError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        BrokerError { kind, message: message.into() }
    }
    pub fn not_found(m: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, m)
    }
    pub fn access_refused(m: impl Into<String>) -> Self {
        Self::new(ErrorKind::AccessRefused, m)
    }
    pub fn precondition_failed(m: impl Into<String>) -> Self {
        Self::new(ErrorKind::PreconditionFailed, m)
    }
    pub fn resource_locked(m: impl Into<String>) -> Self {
        Self::new(ErrorKind::ResourceLocked, m)
    }
    pub fn not_allowed(m: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotAllowed, m)
    }
    pub fn not_implemented(m: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotImplemented, m)
    }
    pub fn command_invalid(m: impl Into<String>) -> Self {
        Self::new(ErrorKind::CommandInvalid, m)
    }
    pub fn channel_error(m: impl Into<String>) -> Self {
        Self::new(ErrorKind::ChannelError, m)
    }
    pub fn frame_error(m: impl Into<String>) -> Self {
        Self::new(ErrorKind::FrameError, m)
    }
    pub fn unexpected_frame(m: impl Into<String>) -> Self {
        Self::new(ErrorKind::UnexpectedFrame, m)
    }
    pub fn syntax_error(m: impl Into<String>) -> Self {
        Self::new(ErrorKind::SyntaxError, m)
    }
    pub fn internal(m: impl Into<String>) -> Self {
        Self::new(ErrorKind::InternalError, m)
    }
    pub fn unavailable(m: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unavailable, m)
    }

    pub fn reply_code(&self) -> u16 {
        self.kind.reply_code()
    }

    /// `NOT_FOUND - no queue 'q' in vhost '/'`, cut to fit an AMQP short string.
    pub fn reply_text(&self) -> String {
        let mut text = format!("{} - {}", self.kind.name(), self.message);
        if text.len() > 255 {
            let mut end = 255;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text.truncate(end);
        }
        text
    }
}

impl fmt::Display for BrokerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} - {}", self.kind.name(), self.message)
    }
}

impl std::error::Error for BrokerError {}

/// RabbitMQ's way of naming a resource in messages: `queue 'q' in vhost '/'`.
pub fn rs(kind: &str, name: &str, vhost: &str) -> String {
    format!("{kind} '{name}' in vhost '{vhost}'")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_text_is_prefixed_and_bounded() {
        let e = BrokerError::not_found(format!("no {}", rs("queue", "q", "/")));
        assert_eq!(e.reply_text(), "NOT_FOUND - no queue 'q' in vhost '/'");
        assert_eq!(e.reply_code(), 404);
        assert!(!e.kind.is_hard());
        let long = BrokerError::precondition_failed("é".repeat(300));
        assert!(long.reply_text().len() <= 255);
        assert!(ErrorKind::FrameError.is_hard());
    }
}

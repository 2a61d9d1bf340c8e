//! Errors of the story domain. Every refusal names what was wrong; validation errors name the
//! field, in the dotted form the HTTP API uses (`source.name`, `responds_to.development`).

use std::borrow::Cow;

/// One invalid input field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    pub field: Cow<'static, str>,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Why the `Story` aggregate refused a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoryError {
    #[error(transparent)]
    Invalid(#[from] FieldError),
    #[error("no such story")]
    StoryNotFound,
    #[error("the story already exists")]
    StoryAlreadyOpened,
    #[error("the story is closed; reopen it before recording developments or revising it")]
    StoryClosed,
    #[error("the story is already {0}")]
    StoryStatusUnchanged(&'static str),
    #[error("no development {0} in this story")]
    DevelopmentNotFound(crate::DevelopmentId),
    #[error("development {0} was already recorded with different content")]
    DevelopmentIdReused(crate::DevelopmentId),
    #[error("development {id} is {status}; {action} is not possible")]
    DevelopmentState {
        id: crate::DevelopmentId,
        status: &'static str,
        action: &'static str,
    },
    #[error("only an {required} may {action}")]
    Forbidden {
        required: &'static str,
        action: &'static str,
    },
    #[error("only the one who filed it may {action}")]
    NotTheirs { action: &'static str },
    #[error("this story and story {story} are related already ({relation}); unlink them first")]
    AlreadyRelated {
        story: crate::StoryId,
        relation: &'static str,
    },
    #[error("this story is not related to story {0}")]
    NotRelated(crate::StoryId),
}

impl StoryError {
    /// The field an input error concerns, if any.
    pub fn field(&self) -> Option<&str> {
        match self {
            StoryError::Invalid(e) => Some(&e.field),
            StoryError::AlreadyRelated { .. } => Some("story"),
            _ => None,
        }
    }
}

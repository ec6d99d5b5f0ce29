//! One JSON shape for every error the API returns:
//! `{"error": {"code": "stable_snake_case", "message": "what to fix"}}`,
//! with the HTTP status that fits.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

pub use fuelhost_api::replies::{ErrorBody, ErrorDetail};

use fuelhost::ApprovalError;
use fuelhost::LedgerError;
use fuelhost::{HostError, InvokeError, UploadError};

/// An error as the API reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// Stable, machine-readable code.
    pub code: &'static str,
    /// What went wrong and what to do about it.
    pub message: String,
    /// Seconds after which a retry may succeed (`Retry-After`), for
    /// refusals that are about load, not about the request.
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// An error with this status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError { status, code, message: message.into(), retry_after: None }
    }

    /// 503: the host is busy; retry after `seconds` (sent as
    /// `Retry-After`).
    pub fn busy(message: impl Into<String>, seconds: u64) -> ApiError {
        ApiError { retry_after: Some(seconds), ..ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "busy", message) }
    }

    /// 400: the request is malformed.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// 403: authenticated, but not allowed.
    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 404: no such thing.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 401: no key, or not a live one.
    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// 409: the request contradicts the state it would change.
    pub fn conflict(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, "conflict", message)
    }

    /// 413: the body is over the server's limit.
    pub fn too_large(max_body_bytes: Option<usize>) -> ApiError {
        let limit = match max_body_bytes {
            Some(n) => format!("{n} bytes"),
            None => "the server's size limit".into(),
        };
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("the body is over {limit}; send less, or raise the server's max_body_bytes"),
        )
    }

    /// 500: the host failed; the message says where.
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }

    /// 503: the database failed or could not be reached (restarting, or
    /// refusing writes); nothing was done, and the same request may be
    /// sent again (`Retry-After: 1`).
    pub fn unavailable(message: impl Into<String>) -> ApiError {
        ApiError {
            retry_after: Some(1),
            ..ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "storage_unavailable", message)
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody { error: ErrorDetail { code: self.code.to_string(), message: self.message } };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(seconds) = self.retry_after {
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, seconds.into());
        }
        response
    }
}

impl From<LedgerError> for ApiError {
    fn from(e: LedgerError) -> Self {
        let message = e.to_string();
        match e {
            LedgerError::UnknownAccount(_) | LedgerError::UnknownAllocation(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
            }
            LedgerError::Insufficient { .. } => {
                ApiError::new(StatusCode::PAYMENT_REQUIRED, "insufficient_funds", message)
            }
            LedgerError::IdConflict(_)
            | LedgerError::AccountExists(_)
            | LedgerError::DuplicateInvocation(_)
            | LedgerError::Conflict(_) => ApiError::new(StatusCode::CONFLICT, "conflict", message),
            LedgerError::Invalid(_) | LedgerError::Overflow(_) => ApiError::bad_request(message),
            LedgerError::AllocationRefused { .. } | LedgerError::GrantUnavailable(_) => {
                ApiError::new(StatusCode::FORBIDDEN, "allocation_refused", message)
            }
            LedgerError::NoReservation(_) => ApiError::internal(message),
            LedgerError::Storage(_) => ApiError::unavailable(message),
        }
    }
}

impl From<HostError> for ApiError {
    fn from(e: HostError) -> Self {
        match e {
            HostError::Ledger(l) => l.into(),
            HostError::InvalidAgent(_) | HostError::Invalid(_) | HostError::Rules(_) => {
                ApiError::bad_request(e.to_string())
            }
            HostError::Denied(m) => ApiError::new(StatusCode::FORBIDDEN, "denied", m),
            HostError::PendingApproval { .. } => ApiError::new(StatusCode::ACCEPTED, "pending_approval", e.to_string()),
            HostError::Store(ref s) if s.is_unavailable() => ApiError::unavailable(e.to_string()),
            other => ApiError::internal(other.to_string()),
        }
    }
}

impl From<InvokeError> for ApiError {
    fn from(e: InvokeError) -> Self {
        let message = e.to_string();
        match e {
            InvokeError::UnknownArtifact(_) | InvokeError::UnknownCaller(_) => ApiError::not_found(message),
            InvokeError::InvalidAgent(_) => ApiError::bad_request(message),
            InvokeError::Denied(_) => ApiError::new(StatusCode::FORBIDDEN, "denied", message),
            InvokeError::PendingApproval { .. } => ApiError::new(StatusCode::ACCEPTED, "pending_approval", message),
            InvokeError::InsufficientScrip { .. } | InvokeError::InsufficientBudget { .. } => {
                ApiError::new(StatusCode::PAYMENT_REQUIRED, "insufficient_funds", message)
            }
            InvokeError::AllocationRefused(_) => ApiError::new(StatusCode::FORBIDDEN, "allocation_refused", message),
            InvokeError::InProgress(_) => ApiError::new(StatusCode::CONFLICT, "in_progress", message),
            InvokeError::IdTaken(_) => ApiError::conflict(message),
            InvokeError::InvalidId(_) => ApiError::bad_request(message),
            InvokeError::InputTooLarge { .. } => ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", message),
            InvokeError::InvalidArguments { .. } => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_arguments", message)
            }
            InvokeError::WrongCall { .. } => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "wrong_call", message),
            InvokeError::Busy(_) => ApiError::busy(message, 1),
            InvokeError::Ledger(l) => l.into(),
            InvokeError::Sandbox(_) => ApiError::internal(message),
            InvokeError::SettlementPending(_) => ApiError::unavailable(message),
        }
    }
}

impl From<UploadError> for ApiError {
    fn from(e: UploadError) -> Self {
        let message = e.to_string();
        match e {
            UploadError::TooLarge { .. } => ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", message),
            UploadError::Manifest(_) => ApiError::bad_request(message),
            UploadError::UnknownOwner(_) => ApiError::not_found(message),
            UploadError::AlreadyExists(_) => ApiError::new(StatusCode::CONFLICT, "conflict", message),
            UploadError::NotAComponent(_)
            | UploadError::Invalid(_)
            | UploadError::UnsatisfiableImport(..)
            | UploadError::MissingExport(..) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_component", message)
            }
            UploadError::Denied(_) => ApiError::new(StatusCode::FORBIDDEN, "denied", message),
            UploadError::PendingApproval { .. } => ApiError::new(StatusCode::ACCEPTED, "pending_approval", message),
            UploadError::ParkedWithOtherBytes(_) => ApiError::conflict(message),
            UploadError::Storage(_) => ApiError::unavailable(message),
            UploadError::Internal(_) => ApiError::internal(message),
        }
    }
}

impl From<ApprovalError> for ApiError {
    fn from(e: ApprovalError) -> Self {
        let message = e.to_string();
        match e {
            ApprovalError::Unknown(_) => ApiError::not_found(message),
            ApprovalError::NotAnApprover { .. }
            | ApprovalError::OwnRequest { .. }
            | ApprovalError::Beneficiary { .. }
            | ApprovalError::Denied(_) => ApiError::forbidden(message),
            ApprovalError::AlreadyDecided { .. } => ApiError::new(StatusCode::CONFLICT, "already_decided", message),
            ApprovalError::Invocation(i) => i.into(),
            // What refused the approved transfer or upload decides the
            // status; the message says it was the approved one.
            ApprovalError::Transfer(h) => ApiError { message, ..h.into() },
            ApprovalError::Upload(u) => ApiError { message, ..u.into() },
            ApprovalError::IdTaken { .. } | ApprovalError::Differs { .. } => ApiError::conflict(message),
            ApprovalError::TooManyParked { .. } => {
                ApiError::new(StatusCode::TOO_MANY_REQUESTS, "too_many_parked", message)
            }
            ApprovalError::Storage(_) => ApiError::unavailable(message),
            ApprovalError::Internal(_) => ApiError::internal(message),
        }
    }
}

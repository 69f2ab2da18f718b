//! One error type for the compute core. Every message names the shape, value or setting at fault.

use std::fmt;

#[derive(Debug, Clone, PartialEq)]
pub enum Error {
    /// No adapter could be found or opened; the message says how to get one.
    NoAdapter(String),
    /// An environment setting (`ODDITY_BACKEND`, `ODDITY_ADAPTER`) has a value we do not understand.
    Config(String),
    /// Shapes or parameters that do not fit the op.
    Shape(String),
    /// A tensor larger than the device can bind in one storage binding.
    TooLarge(String),
    /// The device failed: lost, out of memory, or a readback that could not map.
    Device(String),
    /// An operation that exists but cannot do what was asked (e.g. an op with no backward).
    Unsupported(String),
    /// A NaN or infinite value where the finiteness check (`ODDITY_CHECK_FINITE=1`) found one;
    /// the message names the op that first produced it.
    NonFinite(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NoAdapter(m) => write!(f, "no GPU adapter: {m}"),
            Error::Config(m) => write!(f, "configuration: {m}"),
            Error::Shape(m) => write!(f, "shape: {m}"),
            Error::TooLarge(m) => write!(f, "too large: {m}"),
            Error::Device(m) => write!(f, "device: {m}"),
            Error::Unsupported(m) => write!(f, "unsupported: {m}"),
            Error::NonFinite(m) => write!(f, "non-finite value: {m}"),
        }
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;

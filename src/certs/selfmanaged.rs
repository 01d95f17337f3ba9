//! Self-managed certificates (a Secret, caBundle injection, rotation). Written next.

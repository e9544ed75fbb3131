//! Admission of custom resources against their CRD's structural schema.

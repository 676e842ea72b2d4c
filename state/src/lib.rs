//! Stack state for Stackwright: the versioned state model, its journal and the local directory backend.

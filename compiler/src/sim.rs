//! (classifier helper fills this)

//! (front end helper fills this)

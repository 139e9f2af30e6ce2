"""Pure physics: atoms and conditions in, arrays out. No instrument state, no networking."""

"""Nested Learning methods (HOPE, CMS, self-modifying Titans, deep optimizers) as registered strategies."""

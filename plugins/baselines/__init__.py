"""Built-in baseline plugins: classical entanglement criteria used as predictors."""

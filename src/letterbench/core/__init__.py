"""What every layer may use: errors, atomic writes, torchrun plumbing."""

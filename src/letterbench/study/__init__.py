"""`letterbench run`: the presets and the resumable study."""

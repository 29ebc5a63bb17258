"""Goal health: weekly three-sentence alignment and red/yellow/green lights per rep (SPEC G5, G6)."""

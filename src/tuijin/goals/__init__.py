"""Goals that reach the front line: objectives, cascaded targets, boards, health lights, retrospectives (SPEC G1–G7)."""

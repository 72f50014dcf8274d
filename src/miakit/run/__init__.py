"""The stages of a run: specification, planner, runner and run writer (see DESIGN.md, "A run in stages")."""

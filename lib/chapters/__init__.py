"""Per-chapter parameter specs and the experiment steps each chapter calls."""

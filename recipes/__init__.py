"""One module per source. Installed as `medmo_data.recipes`; each module defines INFO and records()."""

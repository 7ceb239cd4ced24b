"""Fast tests of the pure pathway and its add-ons (checker, migration, diagram, FHIR)."""

"""One-way FHIR R4B exports; the definition file and the audit log stay the source of truth.

- ``plan_definition``: a pathway definition as a ``PlanDefinition``.
- ``audit_bundle``: an episode and its audit log as a ``Bundle`` (CarePlan, Tasks, Provenance).
"""

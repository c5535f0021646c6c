"""Text steps of appeal intake, as small pure functions with no database and no Django models.

* `address`: split a free-text Chinese address into its parts (province … room), by rules that
  always work, or by a CRF trained from BIO-tagged addresses when a model file is configured.
* `classify`: the appeal's category (trainable text model with a keyword floor), its kind
  (咨询/建议/求助/投诉/举报), risk flags (扬言, fire, gas leak, collapse) and urgency tier.
"""

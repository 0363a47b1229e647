"""Transfer of pretrained encoders: Meta-Dataset few-shot classification (:mod:`transfer.fewshot`)
and detection / segmentation / keypoint fine-tuning (:mod:`transfer.detection`)."""

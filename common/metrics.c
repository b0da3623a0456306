typedef int pw_placeholder_metrics; /* replaced by the real module */

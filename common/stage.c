typedef int pw_placeholder_stage; /* replaced by the real module */

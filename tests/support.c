typedef int pw_placeholder_support;

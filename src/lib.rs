//! hdinsight-topic-operator

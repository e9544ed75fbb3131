//! hdinsight emulator
